# ---- a 20 MiB multipart upload with curl (paste into bash) ----------------------------------
API=@API@
TOKEN=@TOKEN@
field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
# a real ~20 MiB image (noise PNG), so the validator tags it valid instead of quarantining it
@PYTHON@ -c 'import os; from PIL import Image; Image.frombytes("RGB", (2600, 2700), os.urandom(2600 * 2700 * 3)).save("/tmp/demo.png", compress_level=0)'
SIZE=$(wc -c < /tmp/demo.png)
UP=$(curl -sf -X POST "$API/uploads" -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
  -d "{\"filename\":\"demo.png\",\"contentType\":\"image/png\",\"size\":$SIZE}")
ID=$(echo "$UP" | field uploadId); KEY=$(echo "$UP" | field key)
PART_SIZE=$(echo "$UP" | field partSize); PARTS=$(echo "$UP" | field partCount)
SIGNED=$(curl -sf -X POST "$API/uploads/$ID/parts" -H "authorization: Bearer $TOKEN" \
  -H 'content-type: application/json' -d "{\"key\":\"$KEY\",\"partNumbers\":[$(seq -s, 1 "$PARTS")]}")
for n in $(seq 1 "$PARTS"); do
  URL=$(echo "$SIGNED" | python3 -c '
import json, sys
n = int(sys.argv[1])
print(next(p["url"] for p in json.load(sys.stdin)["parts"] if p["partNumber"] == n))' "$n")
  dd if=/tmp/demo.png bs="$PART_SIZE" skip=$((n-1)) count=1 status=none \
    | curl -sf -X PUT --data-binary @- -H 'content-type:' "$URL" -o /dev/null && echo "part $n sent"
done
curl -sf -X POST "$API/uploads/$ID/complete" -H "authorization: Bearer $TOKEN" \
  -H 'content-type: application/json' -d "{\"key\":\"$KEY\"}"; echo
# the stored object is byte-identical:
PYTHONPATH=@ROOT@ @PYTHON@ -c '
import sys
from local.s3server import s3_client
body = s3_client("@S3@").get_object(Bucket="@BUCKET@", Key=sys.argv[1])["Body"].read()
sys.stdout.buffer.write(body)' "$KEY" | cmp - /tmp/demo.png && echo identical

# its validation tags, a moment later (upload-status=valid, type and dimensions):
sleep 2; PYTHONPATH=@ROOT@ @PYTHON@ -c '
import sys
from local.s3server import s3_client
tags = s3_client("@S3@").get_object_tagging(Bucket="@BUCKET@", Key=sys.argv[1])["TagSet"]
print(" ".join(f"{t['"'"'Key'"'"']}={t['"'"'Value'"'"']}" for t in tags))' "$KEY"

# ---- a presigned POST form upload (prints S3's status: 201) -----------------------------------
@PYTHON@ -c 'from PIL import Image; Image.new("RGB", (32, 32), "teal").save("/tmp/small.png")'
SMALL=$(wc -c < /tmp/small.png)
FORM=$(curl -sf -X POST "$API/uploads/form" -H "authorization: Bearer $TOKEN" \
  -H 'content-type: application/json' -d "{\"filename\":\"small.png\",\"contentType\":\"image/png\",\"size\":$SMALL}")
echo "$FORM" | python3 -c '
import json, shlex, sys
form = json.load(sys.stdin)
fields = [f"--form-string {shlex.quote(k + chr(61) + v)}" for k, v in form["fields"].items()]
print(" ".join(["curl -s -o /dev/null -w %{http_code}\\\\n", shlex.quote(form["url"]), *fields, "-F file=@/tmp/small.png"]))
' | sh
