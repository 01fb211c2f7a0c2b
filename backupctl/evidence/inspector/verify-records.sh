#!/bin/sh
# backupctl evidence bundle: an independent check with sha256sum, jq and openssl only.
# 証跡バンドルの独立検証（sha256sum・jq・openssl のみ使用）
#
# Run it inside the directory 7-Zip extracted the bundle to:
#   7z x evidence.zip -obundle && cd bundle && sh verify-records.sh
# It checks: every file against SHA256SUMS; every version-2 record's hash (SHA-256 of the
# record without "hash" and "signature" as `jq -cS` prints it, = RFC 8785); the chain
# links (each record's prev_hash is the hash before it, the first one chain.json's
# prev_hash, the last one chain.json's head); every signature against evidence.pub.
# Compare the printed key fingerprint with the one you were given separately.
set -eu
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sha256sum -c --quiet SHA256SUMS
prev=$(jq -r .prev_hash chain.json)
n=0 signed=0
while IFS= read -r line; do
  n=$((n + 1))
  printf '%s' "$line" > "$work/record"
  hash=$(jq -r .hash "$work/record")
  if [ "$(jq -r '.chain_version // 1' "$work/record")" = 2 ]; then
    got=$(jq -jcS 'del(.hash, .signature)' "$work/record" | sha256sum | cut -d' ' -f1)
    if [ "$got" != "$hash" ]; then
      echo "record $n ($hash): its content does not match its hash"; exit 1
    fi
  fi
  if [ "$(jq -r .prev_hash "$work/record")" != "$prev" ]; then
    echo "record $n ($hash): not linked to the record before it"; exit 1
  fi
  signature=$(jq -r '.signature // empty' "$work/record")
  if [ -n "$signature" ]; then
    printf '%s' "$hash" > "$work/hash"
    printf '%s' "$signature" | base64 -d > "$work/signature"
    if ! openssl pkeyutl -verify -pubin -inkey evidence.pub -rawin -in "$work/hash" \
        -sigfile "$work/signature" > /dev/null 2>&1; then
      echo "record $n ($hash): its signature does not verify with evidence.pub"; exit 1
    fi
    signed=$((signed + 1))
  fi
  prev=$hash
done < records.jsonl
if [ "$prev" != "$(jq -r .head chain.json)" ]; then
  echo "the last record is not chain.json's head: records are missing"; exit 1
fi
echo "OK: $n records, hashes and links verified, $signed signatures verified"
if [ -f evidence.pub ]; then
  printf 'key fingerprint: SHA256:'
  openssl pkey -pubin -in evidence.pub -outform DER | tail -c 32 | openssl dgst -sha256 -binary \
    | base64 | tr -d '='
fi
