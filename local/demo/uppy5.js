// /demo/uppy5/: Uppy 5 (`uppy` 5.2.4's prebuilt bundle) against the Companion-style /s3/... routes.
//
// @uppy/aws-s3 5.1.0's `endpoint` option takes `headers`, which is where the bearer token goes;
// Uppy 6's `companionEndpoint` sends no custom headers, so Uppy 6 uses /s3/sign instead (demo.js).
import { AwsS3, Dashboard, Uppy } from './vendor/uppy5.min.mjs'
import { addObject, apiUrl, authHeaders, DASHBOARD_OPTIONS, log, MULTIPART_THRESHOLD, start } from './common.js'

const uppy = new Uppy({ id: 'demo-uppy5', autoProceed: false, debug: false })
  .use(Dashboard, DASHBOARD_OPTIONS)
  .use(AwsS3, {
    id: 'S3',
    endpoint: apiUrl(),
    headers: authHeaders(),
    shouldUseMultipart: (file) => (file.size ?? 0) > MULTIPART_THRESHOLD,
    // The API records the original filename itself; Uppy's other meta fields are not for S3.
    allowedMetaFields: [],
  })

uppy.on('upload-success', (file, response) => {
  const key = response?.body?.key ?? file.s3Multipart?.key
  const via = file.s3Multipart?.uploadId ? 'multipart' : 'POST form'
  log(`uploaded ${file.name} → ${key} (${via})`)
  addObject({ key, size: file.size, via })
})
uppy.on('upload-error', (file, error) => {
  log(`upload of ${file?.name} failed: ${error?.message ?? error}`)
})

document.body.dataset.awsS3Version = AwsS3.VERSION
await start({
  configure: () => uppy.getPlugin('S3').setOptions({ endpoint: apiUrl(), headers: authHeaders() }),
  versions: `@uppy/core ${Uppy.VERSION} · @uppy/dashboard ${Dashboard.VERSION} · @uppy/aws-s3 ${AwsS3.VERSION}`,
})

// For the browser test and the console: the Uppy instance.
window.uppy = uppy
