#!/bin/sh
# backupctl evidence bundle: an independent check with sha256sum, jq and openssl only.
# 証跡バンドルの独立検証（sha256sum・jq・openssl のみ使用）
#
# Run it inside the directory 7-Zip extracted the bundle to:
#   7z x evidence.zip -obundle && cd bundle && sh verify-records.sh
# Exit 0: everything verified. Exit 3: something was changed or forged (named below).
# Exit 1: something could not be proven (a public key is missing). Never "OK" then.
#
# It checks:
# - every file against SHA256SUMS (a *.pub or evidence.head not listed there is refused);
# - every record's hash: version 2 = SHA-256 of the record without "hash" and "signature"
#   as `jq -cS` prints it (= RFC 8785); version 1 = SHA-256 of the line as exported
#   (Python's sorted compact JSON) without its "hash" member;
# - the links: each prev_hash is the hash before it, the first chain.json's prev_hash, the
#   last chain.json's head;
# - the order of versions: version 1 only at the start (never after a version-2 record,
#   never carrying version-2 fields), no unsigned record after a signed one;
# - every signature, with the *.pub whose fingerprint the record names (key_fingerprint),
#   or with any *.pub for records signed before records named their key; a record naming
#   a key that is in no *.pub was signed by a foreign key;
# - evidence.head (the head pin, signed with evidence.pub): every record from its
#   first_signed_seq on is signed, and its pinned seq holds its pinned hash;
# - chain.json's "database": whether the whole state database verified at export.
# Compare the printed key fingerprints with the ones you were given separately.
set -eu
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

forged() { echo "FORGED: $*"; exit 3; }
unproven() { echo "CANNOT PROVE: $*"; exit 1; }
listed() { grep -q "^[0-9a-f]\{64\}  $1\$" SHA256SUMS; }
fingerprint() {
  printf 'SHA256:%s' "$(openssl pkey -pubin -in "$1" -outform DER | tail -c 32 \
    | openssl dgst -sha256 -binary | base64 | tr -d '=')"
}
verify_sig() {  # HASH SIGNATURE KEYFILE
  printf '%s' "$1" > "$work/hash"
  printf '%s' "$2" | base64 -d > "$work/signature" 2> /dev/null || return 1
  openssl pkeyutl -verify -pubin -inkey "$3" -rawin -in "$work/hash" \
    -sigfile "$work/signature" > /dev/null 2>&1
}

sha256sum -c --quiet SHA256SUMS || forged "files differ from SHA256SUMS"

: > "$work/keys"
for f in *.pub; do
  [ -f "$f" ] || continue
  listed "$f" || forged "$f is not listed in SHA256SUMS (added after export)"
  printf '%s %s\n' "$(fingerprint "$f")" "$f" >> "$work/keys"
done

first_signed='' pin_seq='' pin_hash=''
if [ -f evidence.head ]; then
  listed evidence.head || forged "evidence.head is not listed in SHA256SUMS"
  [ -f evidence.pub ] || unproven "evidence.head cannot be checked: the bundle has no evidence.pub"
  digest=$(jq -jcS 'del(.signature)' evidence.head | sha256sum | cut -d' ' -f1)
  if [ "$(jq -r .key_fingerprint evidence.head)" != "$(fingerprint evidence.pub)" ] \
      || ! verify_sig "$digest" "$(jq -r .signature evidence.head)" evidence.pub; then
    forged "evidence.head (the head pin) does not verify with evidence.pub"
  fi
  first_signed=$(jq -r .first_signed_seq evidence.head)
  pin_seq=$(jq -r .seq evidence.head)
  pin_hash=$(jq -r .hash evidence.head)
fi

if jq -e '.seqs | type == "array"' chain.json > /dev/null; then
  jq -r '.seqs[]' chain.json > "$work/seqs"
else
  awk -v f="$(jq -r '.first_seq // 1' chain.json)" '{ print f + NR - 1 }' records.jsonl \
    > "$work/seqs"
fi

prev=$(jq -r .prev_hash chain.json)
n=0 signed=0 first_v2='' seen_signed=''
exec 3< "$work/seqs"
while IFS= read -r line; do
  IFS= read -r seq <&3 || forged "chain.json lists fewer seqs than records.jsonl holds"
  n=$((n + 1))
  printf '%s' "$line" > "$work/record"
  jq -e 'type == "object"' "$work/record" > /dev/null 2>&1 \
    || forged "record $n (seq $seq): not a JSON object"
  # hash version signature key_fingerprint prev_hash (and how many version-2 fields)
  set -- $(jq -r '[.hash, (.chain_version // "none"), .signature, .key_fingerprint,
    .prev_hash, ([.orchestrator, .signature, .key_fingerprint]
    | map(select(. != null and . != "")) | length)]
    | map(if . == null or . == "" then "-" else (tostring | gsub("\\s"; "_")) end)
    | join(" ")' "$work/record")
  [ $# -eq 6 ] || forged "record $n (seq $seq): malformed"
  hash=$1 version=$2 signature=$3 named=$4 linked=$5 v2fields=$6
  name="record $n (seq $seq, $(printf '%.16s' "$hash")…)"
  case $hash in
    *[!0-9a-f]*) forged "$name: its hash is not hexadecimal" ;;
  esac
  [ ${#hash} -eq 64 ] || forged "$name: its hash is not a SHA-256"
  case $version in
    2)
      got=$(jq -jcS 'del(.hash, .signature)' "$work/record" | sha256sum | cut -d' ' -f1)
      [ "$got" = "$hash" ] || forged "$name: edited: its content does not match its hash"
      [ -n "$first_v2" ] || first_v2=$seq ;;
    none)
      [ "$v2fields" = 0 ] || forged "$name: downgraded: marked version 1 but carries version-2 fields"
      [ -z "$first_v2" ] || forged "$name: downgraded: version 1 after version-2 record seq $first_v2"
      if [ -n "$first_signed" ] && [ "$seq" -ge "$first_signed" ]; then
        forged "$name: downgraded: version 1, but evidence.head says every record from seq $first_signed on is signed"
      fi
      got=$(printf '%s' "$line" | sed "s/,\"hash\":\"$hash\"//" | sha256sum | cut -d' ' -f1)
      [ "$got" = "$hash" ] || forged "$name: edited: its content does not match its hash (version 1)" ;;
    *) forged "$name: downgraded: chain_version $version is never written (version 1 has none)" ;;
  esac
  [ "$linked" = "$prev" ] || forged "$name: not linked to the record before it (deleted, inserted or moved)"
  if [ "$signature" != "-" ]; then
    if [ "$named" != "-" ]; then
      keyfile=$(awk -v fp="$named" '$1 == fp { print $2; exit }' "$work/keys")
      if [ -z "$keyfile" ]; then
        [ -f evidence.pub ] || unproven "$name is signed with key $named, and the bundle has no evidence.pub"
        forged "$name: foreign key: signed with key $named, which is not in the bundle (neither evidence.pub nor a trusted key)"
      fi
      verify_sig "$hash" "$signature" "$keyfile" \
        || forged "$name: its signature does not verify with $keyfile ($named)"
    else
      ok=''
      while read -r _ keyfile; do
        if verify_sig "$hash" "$signature" "$keyfile"; then ok=1; break; fi
      done < "$work/keys"
      if [ -z "$ok" ]; then
        [ -f evidence.pub ] || unproven "$name is signed, and the bundle has no evidence.pub"
        forged "$name: its signature does not verify with any *.pub of the bundle"
      fi
    fi
    if [ -n "$first_signed" ] && [ "$seq" -lt "$first_signed" ]; then
      forged "$name is signed, but evidence.head says the first signed record is seq $first_signed"
    fi
    signed=$((signed + 1))
    [ -n "$seen_signed" ] || seen_signed=$seq
  else
    [ -z "$seen_signed" ] || forged "$name: stripped: not signed although record seq $seen_signed before it is"
    if [ -n "$first_signed" ] && [ "$seq" -ge "$first_signed" ]; then
      forged "$name: stripped: not signed, but evidence.head says every record from seq $first_signed on is"
    fi
    [ "$named" = "-" ] || forged "$name: stripped: it names key $named but has no signature"
  fi
  if [ "$seq" = "$pin_seq" ] && [ "$hash" != "$pin_hash" ]; then
    forged "$name is not the record evidence.head pins at seq $pin_seq: records were deleted or rewritten"
  fi
  prev=$hash
done < records.jsonl
exec 3<&-
if [ "$prev" != "$(jq -r .head chain.json)" ]; then
  forged "the last record is not chain.json's head: records are missing"
fi

case $(jq -r 'if .database == null then "none" else (.database.ok | tostring) end' chain.json) in
  true) ;;
  false)
    echo "the state database did not verify when the bundle was exported:"
    jq -r '.database.problems[]?.message // .database.problem.message // "?"' chain.json
    [ "$(jq -r '.database.exit_code // 3' chain.json)" = 1 ] && exit 1
    exit 3 ;;
  *) unproven "chain.json does not state whether the state database verified at export" ;;
esac

echo "OK: $n records, hashes and links verified, $signed signatures verified"
[ -z "$pin_seq" ] || echo "head pin: seq $pin_seq, first signed seq $first_signed"
while read -r fp keyfile; do
  echo "key fingerprint: $fp ($keyfile)"
done < "$work/keys"
