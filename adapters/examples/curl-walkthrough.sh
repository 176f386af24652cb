#!/usr/bin/env bash
# The once-gateway API with nothing but curl, step by step, against running
# gateways: the issuing department's (market supervision: publish, revoke)
# and a requesting department's (tax: catalogue, request).
#
#   MARKET_URL=http://127.0.0.1:8443 MARKET_TOKEN=... \
#   TAX_URL=http://127.0.0.1:8444 TAX_TOKEN=... \
#   adapters/examples/curl-walkthrough.sh 91110108MA00000012
#
# The argument is the enterprise's Unified Social Credit Code (a valid
# one: the broker checks its check character). The steps, each printed
# with its curl command, the HTTP status and the answer:
#
#   1. tax asks the catalogue what it may request (GET /v1/catalogue);
#   2. market supervision publishes the licence (PUT) with an
#      Idempotency-Key;
#   3. it retries the same PUT with the same key, as a caller would after a
#      timeout: the same answer, the same version, no second record;
#   4. tax requests the licence for a case (GET ?purpose=&case_id=): only
#      the granted fields, checked against the issuer's signature;
#   5. market supervision revokes it (POST .../revocations);
#   6. tax requests it again: answered "revoked", no fields;
#   7. a request with a token the gateway does not know: 401, an RFC 9457
#      problem (application/problem+json).
#
# Exits 0 when every step got the status it expects, 1 at the first that
# did not. Environment: MARKET_URL, MARKET_TOKEN, TAX_URL, TAX_TOKEN
# (required); TYPE (business-licence), PURPOSE (tax-registration),
# CASE_ID (TAX-2026-0001), FIELDS (the licence's fields as a JSON object),
# CURL_OPTS (extra curl options, e.g. "--cacert gateway.pem" for HTTPS).
# Needs curl only. See adapters/examples/README.md.
set -euo pipefail

if [ $# -ne 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'
  [ $# -eq 1 ] && exit 0 || exit 2
fi
subject=$1
: "${MARKET_URL:?set MARKET_URL}" "${MARKET_TOKEN:?set MARKET_TOKEN}"
: "${TAX_URL:?set TAX_URL}" "${TAX_TOKEN:?set TAX_TOKEN}"
type=${TYPE:-business-licence}
purpose=${PURPOSE:-tax-registration}
case_id=${CASE_ID:-TAX-2026-0001}
fields=${FIELDS:-'{"name": "Haidian Example Co., Ltd.", "legal_representative": "Zhang San", "address": "1 Zhongguancun Street, Haidian, Beijing"}'}
read -r -a curl_opts <<<"${CURL_OPTS:-}"

body=$(mktemp)
trap 'rm -f "$body"' EXIT
answer=""

# step TITLE EXPECTED-STATUS CURL-ARGS...: runs curl, prints the command
# (tokens elided), the status and the answer; fails unless the status is
# the expected one. The answer is left in $answer.
step() {
  local title=$1 expected=$2 status shown
  shift 2
  shown=$(printf ' %q' "$@" | sed 's/Bearer\\ [^ ]*/Bearer\\ .../g')
  printf '\n== %s\n$ curl%s\n' "$title" "$shown"
  status=$(curl -sS "${curl_opts[@]}" -o "$body" -w '%{http_code}' "$@")
  answer=$(cat "$body")
  printf 'HTTP %s\n%s\n' "$status" "$answer"
  if [ "$status" != "$expected" ]; then
    printf 'curl-walkthrough: expected HTTP %s, got %s\n' "$expected" \
      "$status" >&2
    exit 1
  fi
}

# expect TEXT: the last answer contains TEXT (the gateway's JSON is compact).
expect() {
  case "$answer" in
    *"$1"*) ;;
    *) printf 'curl-walkthrough: the answer lacks %s\n' "$1" >&2; exit 1 ;;
  esac
}

record="records/$type/$subject"
key="walkthrough-$subject"

step "1. tax: what may I request? (the catalogue)" 200 \
  -H "Authorization: Bearer $TAX_TOKEN" "$TAX_URL/v1/catalogue"
expect "\"purpose\":\"$purpose\""

step "2. market supervision publishes the licence" 201 \
  -X PUT -H "Authorization: Bearer $MARKET_TOKEN" \
  -H "Content-Type: application/json" -H "Idempotency-Key: $key" \
  --data "{\"fields\": $fields}" "$MARKET_URL/v1/$record"
expect '"status":"valid"'
first=$answer

step "3. the same PUT again (a retry after a timeout): the same answer" 201 \
  -X PUT -H "Authorization: Bearer $MARKET_TOKEN" \
  -H "Content-Type: application/json" -H "Idempotency-Key: $key" \
  --data "{\"fields\": $fields}" "$MARKET_URL/v1/$record"
if [ "$answer" != "$first" ]; then
  echo "curl-walkthrough: the retry got another answer" >&2
  exit 1
fi
echo "(identical to step 2: one version, one log leaf)"

step "4. tax requests the licence for its case" 200 \
  -H "Authorization: Bearer $TAX_TOKEN" -G \
  --data-urlencode "purpose=$purpose" --data-urlencode "case_id=$case_id" \
  "$TAX_URL/v1/$record"
expect '"status":"valid"'
expect '"issuer_signature":true'

step "5. market supervision revokes the licence" 201 \
  -X POST -H "Authorization: Bearer $MARKET_TOKEN" \
  -H "Content-Type: application/json" \
  --data '{"reason": "the company was dissolved"}' \
  "$MARKET_URL/v1/$record/revocations"
expect '"status":"revoked"'

step "6. tax requests it again: revoked, no fields" 200 \
  -H "Authorization: Bearer $TAX_TOKEN" -G \
  --data-urlencode "purpose=$purpose" --data-urlencode "case_id=$case_id" \
  "$TAX_URL/v1/$record"
expect '"status":"revoked"'
expect '"fields":{}'

step "7. a token the gateway does not know: refused" 401 \
  -H "Authorization: Bearer not-a-token-of-this-gateway" -G \
  --data-urlencode "purpose=$purpose" --data-urlencode "case_id=$case_id" \
  "$TAX_URL/v1/$record"
expect '"code":"UNAUTHORIZED"'

printf '\ncurl-walkthrough: all 7 steps answered as expected\n'
