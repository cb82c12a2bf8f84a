// The demo page's "Your files": GET /files with each file's status, a download link for valid
// ones (GET /files/{fileId} hands out a short-lived attachment link), a delete button
// (DELETE /files/{fileId}). Kept apart from demo.js: it only reads the page's API URL and token
// inputs, and listens to window.uppy.

const $ = (selector) => document.querySelector(selector)
const REFRESH_SECONDS = 3
const VERDICT_REFRESH_DELAYS = [0.5, 1.5, 3, 6, 10]

function apiUrl() {
  return $('#api-url').value.trim().replace(/\/+$/, '') || window.location.origin
}

async function call(method, path) {
  const token = $('#token').value.trim()
  const response = await fetch(apiUrl() + path, {
    method,
    headers: token ? { authorization: `Bearer ${token}` } : {},
  })
  if (response.status === 204) return null
  const body = await response.json().catch(() => ({}))
  if (!response.ok) {
    const error = new Error(body.message ?? `HTTP ${response.status}`)
    error.status = response.status
    error.code = body.code
    throw error
  }
  return body
}

function cell(row, text) {
  const td = document.createElement('td')
  td.textContent = text
  row.append(td)
  return td
}

async function download(file, link) {
  link.textContent = 'preparing…'
  try {
    const got = await call('GET', `/files/${file.fileId}`)
    window.location.assign(got.download.url) // an attachment: the browser saves it, never renders it
    link.textContent = 'download'
  } catch (error) {
    link.textContent = `no link: ${error.message}`
  }
}

async function remove(file, button) {
  button.disabled = true
  try {
    await call('DELETE', `/files/${file.fileId}`)
    await refresh()
  } catch (error) {
    button.disabled = false
    button.title = error.message
  }
}

function render(files) {
  const table = $('#files')
  const body = table.querySelector('tbody')
  body.replaceChildren()
  for (const file of files) {
    const row = document.createElement('tr')
    row.dataset.fileId = file.fileId
    row.dataset.status = file.status
    cell(row, file.name)
    cell(row, `${file.size.toLocaleString()} B`)
    const status = cell(row, file.status + (file.reason ? ` (${file.reason})` : ''))
    status.style.color = `var(--${file.status})` // demo.css's verdict colours
    const actions = cell(row, '')
    if (file.status === 'valid') {
      const link = document.createElement('a')
      link.href = '#'
      link.className = 'download'
      link.textContent = 'download'
      link.addEventListener('click', (event) => {
        event.preventDefault()
        download(file, link)
      })
      actions.append(link, ' ')
    }
    const button = document.createElement('button')
    button.type = 'button'
    button.className = 'delete'
    button.textContent = 'delete'
    button.addEventListener('click', () => remove(file, button))
    actions.append(button)
    body.append(row)
  }
  table.hidden = files.length === 0
  $('#files-empty').hidden = files.length !== 0
}

export async function refresh() {
  try {
    const listed = await call('GET', '/files?limit=50')
    render(listed.files)
    $('#files-message').textContent = ''
  } catch (error) {
    $('#files-message').textContent = `Cannot list files: ${error.message}`
  }
}

function attach(uppy) {
  if (uppy.filesPageAttached) return
  uppy.filesPageAttached = true
  // demo.js marks a rejected file failed in Uppy's list; here the list follows the verdicts.
  uppy.on('upload-success', () => {
    for (const seconds of VERDICT_REFRESH_DELAYS) setTimeout(refresh, seconds * 1000)
  })
}

function waitForUppy() {
  if (window.uppy) attach(window.uppy)
  else setTimeout(waitForUppy, 200)
}

$('#files-refresh').addEventListener('click', refresh)
waitForUppy()
setTimeout(refresh, 500)
setInterval(refresh, REFRESH_SECONDS * 1000)
