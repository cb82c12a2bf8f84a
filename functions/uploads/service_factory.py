"""The container's one UploadService (and so one boto3 client), shared by every upload route.

Routes take it with `Annotated[UploadService, Depends(upload_service)]`; tests replace it with
`app.dependency_overrides[upload_service]`.
"""

from __future__ import annotations

from upload_core.put_batches import PutBatches
from upload_core.settings import get_settings
from upload_core.uploads import UploadService
from upload_core.uppy_signing import UppySigner
from upload_edge.providers import Lazy

upload_service = Lazy(lambda: UploadService(get_settings()))
uppy_signer = Lazy(lambda: UppySigner(upload_service()))
put_batches = Lazy(lambda: PutBatches(upload_service()))
