// What both demo pages share: the API settings, the API client, the objects table with each
// object's validation verdict, the import-from-URL box and the local configuration.
// /demo/ runs Uppy 6 (demo.js), /demo/uppy5/ Uppy 5 (uppy5.js); both import this module.

export const MIB = 1024 * 1024
// Lower than Uppy's 100 MiB default so that small files show both paths: multipart above it,
// one request at or below it (a presigned PUT on /demo/, a POST form on /demo/uppy5/).
// The Dashboard both pages show (the plugin classes come from each page's own Uppy bundle).
export const DASHBOARD_OPTIONS = {
  inline: true,
  target: '#uploader',
  height: 360,
  width: '100%',
  showProgressDetails: true,
  proudlyDisplayPoweredByUppy: false,
  note: 'JPEG, PNG, GIF, WebP or AVIF; the API refuses other types.',
}

export const MULTIPART_THRESHOLD = 8 * MIB
// Seconds between status polls; the validator usually answers within the first few.
const STATUS_POLL_DELAYS = [0.5, 1, 1, 2, 2, 3, 3, 5, 5, 5]

const $ = (selector) => document.querySelector(selector)
const apiInput = $('#api-url')
const tokenInput = $('#token')

export function log(text) {
  const item = document.createElement('li')
  item.textContent = `${new Date().toLocaleTimeString()}  ${text}`
  $('#log').append(item)
}

export function apiUrl() {
  return apiInput.value.trim().replace(/\/+$/, '') || window.location.origin
}

export function authHeaders() {
  const token = tokenInput.value.trim()
  return token ? { authorization: `Bearer ${token}` } : {}
}

function tokenSubject(token) {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')
    return JSON.parse(atob(payload)).sub ?? null
  } catch {
    return null
  }
}

export function showTokenUser() {
  const sub = tokenSubject(tokenInput.value.trim())
  $('#token-user').textContent = sub ? `(user “${sub}”)` : '(not a JWT)'
}

export function formatBytes(size) {
  if (size == null) return '?'
  if (size < 1024) return `${size} B`
  if (size < MIB) return `${(size / 1024).toFixed(1)} KiB`
  return `${(size / MIB).toFixed(1)} MiB`
}

// API errors are {"code", "message"}; API Gateway's own are {"message"}.
async function apiError(response) {
  let detail = ''
  try {
    const body = await response.json()
    detail = [body.code, body.message].filter(Boolean).join(': ')
  } catch {
    // not JSON
  }
  return new Error(`${response.status} ${detail || response.statusText}`)
}

export async function api(method, path, body) {
  const headers = { ...authHeaders(), accept: 'application/json' }
  if (body !== undefined) headers['content-type'] = 'application/json'
  const response = await fetch(`${apiUrl()}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  if (!response.ok) throw await apiError(response)
  return response.json()
}

// ------------------------------------------------------------------ objects and their verdicts

const rows = new Map()

// `onVerdict` hears the validator's final verdict (valid or rejected).
export function addObject({ key, size, via, onVerdict }) {
  $('#objects-empty').hidden = true
  $('#objects').hidden = false
  const row = document.createElement('tr')
  row.className = 'object'
  row.dataset.key = key
  row.dataset.status = 'pending'
  for (const name of ['key', 'size', 'via', 'status', 'tags']) {
    const cell = document.createElement('td')
    cell.className = name
    row.append(cell)
  }
  row.querySelector('.key').textContent = key
  row.querySelector('.size').textContent = formatBytes(size)
  row.querySelector('.via').textContent = via
  $('#objects tbody').prepend(row)
  rows.set(key, row)
  showStatus(row, { status: 'pending', tags: {} }, 'checking…')
  pollStatus(key, row, onVerdict)
}

function showStatus(row, verdict, note = '') {
  row.dataset.status = verdict.status
  const status = row.querySelector('.status')
  status.replaceChildren()
  const badge = document.createElement('span')
  badge.className = `badge ${verdict.status}`
  badge.textContent = verdict.status
  status.append(badge)
  const reason = verdict.status === 'valid' ? '' : verdict.reason
  const extra = [reason, verdict.quarantined ? 'quarantined' : '', note].filter(Boolean).join(' · ')
  if (extra) {
    const detail = document.createElement('span')
    detail.className = 'muted small detail'
    detail.textContent = ` ${extra}`
    status.append(detail)
  }
  const tags = row.querySelector('.tags')
  tags.replaceChildren()
  for (const [name, value] of Object.entries(verdict.tags ?? {}).sort()) {
    const tag = document.createElement('code')
    tag.className = 'tag'
    tag.dataset.name = name
    tag.textContent = `${name}=${value}`
    tags.append(tag, ' ')
  }
}

// The validator runs asynchronously after S3's ObjectCreated event: poll until it has decided.
async function pollStatus(key, row, onVerdict) {
  for (const delay of STATUS_POLL_DELAYS) {
    await new Promise((resolve) => setTimeout(resolve, delay * 1000))
    let verdict
    try {
      verdict = await api('GET', `/objects/status?key=${encodeURIComponent(key)}`)
    } catch (error) {
      showStatus(row, { status: 'pending', tags: {} }, `status: ${error.message}`)
      continue
    }
    showStatus(row, verdict)
    if (verdict.status !== 'pending') {
      log(`${key}: ${verdict.status}${verdict.reason ? ` (${verdict.reason})` : ''}`)
      onVerdict?.(verdict)
      return
    }
  }
  showStatus(row, { status: 'pending', tags: {} }, 'still pending; reload the page to look again')
}

// ------------------------------------------------------------------ import from URL

$('#import-form').addEventListener('submit', async (event) => {
  event.preventDefault()
  const url = $('#import-url').value.trim()
  const message = $('#import-message')
  const button = $('#import-button')
  button.disabled = true
  message.className = 'small'
  message.textContent = `Importing ${url}…`
  try {
    const imported = await api('POST', '/imports', { url })
    message.textContent = `Imported ${formatBytes(imported.size)} of ${imported.contentType} as ${imported.key}`
    log(`imported ${url} → ${imported.key}`)
    addObject({ key: imported.key, size: imported.size, via: 'import' })
  } catch (error) {
    message.className = 'small error'
    message.textContent = `Import refused: ${error.message}`
    log(`import of ${url} failed: ${error.message}`)
  } finally {
    button.disabled = false
  }
})

// ------------------------------------------------------------------ start-up

// `configure` runs whenever the API URL or the token changes (and once the configuration is in).
export async function start({ configure, versions }) {
  apiInput.addEventListener('change', configure)
  tokenInput.addEventListener('input', configure)
  $('#versions').textContent = versions
  $('#multipart-threshold').textContent = formatBytes(MULTIPART_THRESHOLD)
  await loadLocalConfig()
  configure()
  showTokenUser()
  document.body.dataset.ready = 'true'
  log('ready')
}

async function loadLocalConfig() {
  // config.json exists only where the local stack serves this page: it names the API and hands
  // out a local token signed with the local stack's key (only the local API accepts it).
  try {
    const response = await fetch(new URL('config.json', import.meta.url), { cache: 'no-store' })
    if (!response.ok) throw new Error(`${response.status}`)
    const config = await response.json()
    apiInput.value = config.apiUrl ?? ''
    tokenInput.value = config.token ?? ''
    $('#config-note').textContent =
      `Local token for “${config.user}”, signed by the local stack's key (only the local API accepts it). ` +
      'Paste another token to upload as someone else.'
  } catch (error) {
    $('#config-note').textContent = `No local configuration (${error.message}): enter the API URL and a token.`
  }
}
