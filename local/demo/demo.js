// /demo/: Uppy 6 from `npm install uppy` (6.0.1, its prebuilt bundle: @uppy/aws-s3 6.1.0) with
// `signRequest` against POST /s3/sign, and
// @uppy/golden-retriever, which resumes an upload after a reload (Uppy lists the parts S3 holds
// and sends only the others).
//
// Uppy asks its signer for one S3 request at a time and then sends it to S3 itself. Its request
// does not carry the file, so the key Uppy generates remembers it: the first request of an upload
// (a whole-file PUT or CreateMultipartUpload) tells the API the file's size, name and type, and the
// API answers with a key of its own choosing; every later request names that key.
import { AwsS3, Dashboard, GoldenRetriever, Uppy } from './vendor/uppy.min.mjs'
import { addObject, api, DASHBOARD_OPTIONS, log, MIB, MULTIPART_THRESHOLD, start } from './common.js'

const filesByRequestedKey = new Map()
const multipartKeys = new Set()

async function signRequest(request) {
  const file = filesByRequestedKey.get(request.key)
  const body = file ? { ...request, size: file.size, name: file.name, type: file.type } : request
  const signed = await api('POST', '/s3/sign', body)
  // A POST without uploadId creates a multipart upload; every request with one is for such an upload.
  if (request.method === 'POST' || request.uploadId) multipartKeys.add(signed.key ?? request.key)
  return signed
}

const uppy = new Uppy({ id: 'demo', autoProceed: false, debug: false })
  .use(Dashboard, DASHBOARD_OPTIONS)
  .use(AwsS3, {
    id: 'S3',
    shouldUseMultipart: (file) => (file.size ?? 0) > MULTIPART_THRESHOLD,
    generateObjectKey: (file) => {
      const key = `${crypto.randomUUID()}-${file.name}`
      filesByRequestedKey.set(key, file)
      return key
    },
    signRequest,
    allowedMetaFields: [],
  })
  // File blobs are kept in IndexedDB so that a reload can resume them (Uppy's default keeps
  // files up to 10 MiB only).
  .use(GoldenRetriever, { indexedDB: { maxFileSize: 1024 * MIB, maxTotalSize: 2048 * MIB } })

uppy.on('upload-success', (file, response) => {
  const key = response?.body?.key
  const via = multipartKeys.has(key) ? 'multipart' : 'presigned PUT'
  log(`uploaded ${file.name} → ${key} (${via})`)
  addObject({ key, size: file.size, via, onVerdict: (verdict) => showRejected(file, verdict) })
})

// S3 took the bytes, but the validator refused the file: Uppy shows it as failed.
function showRejected(file, verdict) {
  if (verdict.status !== 'rejected' || !uppy.getFile(file.id)) return
  uppy.setFileState(file.id, { error: `rejected by the validator: ${verdict.reason ?? 'unknown reason'}` })
}
uppy.on('upload-error', (file, error) => {
  log(`upload of ${file?.name} failed: ${error?.message ?? error}`)
})
uppy.on('restored', () => log('restored files from before the reload (golden retriever)'))

document.body.dataset.awsS3Version = AwsS3.VERSION
await start({
  // signRequest reads the API URL and the token on each call: nothing to reconfigure.
  configure: () => {},
  versions: `@uppy/core ${Uppy.VERSION} · @uppy/dashboard ${Dashboard.VERSION} · @uppy/aws-s3 ${AwsS3.VERSION} · @uppy/golden-retriever ${GoldenRetriever.VERSION}`,
})

// For the browser test and the console: the Uppy instance.
window.uppy = uppy
