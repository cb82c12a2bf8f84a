// The demo page's Uppy 6, bundled by `npm ci` (package.json "postinstall") into vendor/uppy6.mjs.
// The `uppy` 6.0.1 meta-package's prebuilt bundle carries @uppy/aws-s3 6.1.0, which cannot upload
// a presigned POST form (`fields`, new in 6.3.0), so the page bundles the standalone packages.
export { default as Uppy } from '@uppy/core'
export { default as Dashboard } from '@uppy/dashboard'
export { default as AwsS3 } from '@uppy/aws-s3'
export { default as GoldenRetriever } from '@uppy/golden-retriever'
