(  # a subshell: `set -e` stops this script at the first failure, not your shell
set -euo pipefail
API=${API:-@API@}
S3=${S3:-@S3@}
BUCKET=${BUCKET:-@BUCKET@}
PY=.venv/bin/python  # run from the repository's root
TOKEN=${TOKEN:-$($PY -m local.dev --token local-user)}
AUTH="authorization: Bearer $TOKEN"
WORK=$(mktemp -d)
field() { $PY -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# a presigned POST form upload of a small image (S3 answers 201)
$PY -c 'import sys; from PIL import Image; Image.new("RGB", (32, 32), "teal").save(sys.argv[1])' "$WORK/small.png"
FORM=$(curl -sS --fail-with-body -X POST "$API/uploads/form" -H "$AUTH" -H 'content-type: application/json' \
  -d "{\"filename\":\"small.png\",\"contentType\":\"image/png\",\"size\":$(wc -c < "$WORK/small.png")}")
echo "$FORM" | $PY -c 'import json, sys; form = json.load(sys.stdin); print(form["url"]); [print(f"{k}={v}") for k, v in form["fields"].items()]' > "$WORK/form"
FIELDS=(); while read -r LINE; do FIELDS+=(--form-string "$LINE"); done < <(tail -n +2 "$WORK/form")
curl -sS --fail-with-body -o /dev/null -w 'form upload: %{http_code}\n' "$(head -n 1 "$WORK/form")" "${FIELDS[@]}" -F "file=@$WORK/small.png"

# a 20 MB multipart upload: a real image (noise PNG), so the validator tags it valid
$PY -c 'import os, sys; from PIL import Image; Image.frombytes("RGB", (2600, 2700), os.urandom(2600 * 2700 * 3)).save(sys.argv[1], compress_level=0)' "$WORK/photo.png"
# 1. start: the server chooses the key and the part plan
UP=$(curl -sS --fail-with-body -X POST "$API/uploads" -H "$AUTH" -H 'content-type: application/json' \
  -d "{\"filename\":\"photo.png\",\"contentType\":\"image/png\",\"size\":$(wc -c < "$WORK/photo.png")}")
UPLOAD_ID=$(echo "$UP" | field uploadId); KEY=$(echo "$UP" | field key)
PART_SIZE=$(echo "$UP" | field partSize); PARTS=$(echo "$UP" | field partCount)
echo "upload $UPLOAD_ID: $PARTS parts of $PART_SIZE bytes to $KEY"
# 2. sign the part URLs (up to 1000 per request)
SIGNED=$(curl -sS --fail-with-body -X POST "$API/uploads/$UPLOAD_ID/parts" -H "$AUTH" \
  -H 'content-type: application/json' -d "{\"key\":\"$KEY\",\"partNumbers\":[$(seq -s, 1 "$PARTS")]}")
# 3. PUT each part's bytes to its URL, straight to S3
for N in $(seq 1 "$PARTS"); do
  URL=$(echo "$SIGNED" | $PY -c 'import json, sys; print(next(p["url"] for p in json.load(sys.stdin)["parts"] if p["partNumber"] == int(sys.argv[1])))' "$N")
  dd if="$WORK/photo.png" of="$WORK/part" bs="$PART_SIZE" skip=$((N - 1)) count=1 status=none
  curl -sS --fail-with-body -T "$WORK/part" "$URL" -o /dev/null && echo "part $N sent"
done
# 4. complete (without a parts list the API uses every uploaded part)
curl -sS --fail-with-body -X POST "$API/uploads/$UPLOAD_ID/complete" -H "$AUTH" \
  -H 'content-type: application/json' -d "{\"key\":\"$KEY\"}"; echo
# 5. the validator's verdict, a moment later
for _ in $(seq 1 20); do
  STATUS=$(curl -sS --fail-with-body -G "$API/objects/status" --data-urlencode "key=$KEY" -H "$AUTH" | field status)
  [ "$STATUS" != pending ] && break; sleep 0.5
done
echo "validation: $STATUS"
# 6. the stored object is byte-identical to the file
$PY -c 'import sys; from local.s3server import s3_client; sys.stdout.buffer.write(s3_client(sys.argv[1]).get_object(Bucket=sys.argv[2], Key=sys.argv[3])["Body"].read())' \
  "$S3" "$BUCKET" "$KEY" | cmp - "$WORK/photo.png" && echo identical
rm -r "$WORK"
)
