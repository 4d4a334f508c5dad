#!/bin/sh
# certs.sh -- test PKI for the TLS specs and tests/c/test_tls.c, made with
# the openssl CLI at test time (nothing secret is ever committed).
#
#   sh tests/support/certs.sh DIR     # DIR is created if needed
#
# Writes into DIR (EC P-256 keys: generating them costs nothing):
#   ca.pem ca.key             test CA ("netsh test CA")
#   server.pem server.key     signed by the CA: localhost, 127.0.0.1, ::1
#   expired.pem expired.key   signed by the CA, same names, expired in 2020
#   wrong.pem wrong.key       signed by the CA, only wrong.example
#   self.pem self.key         self-signed: localhost, 127.0.0.1, ::1
#   client.pem client.key     signed by the CA, clientAuth ("netsh client")
#   chained.pem chained.key   leaf + intermediate (inter.pem, 20 days left)
#   other-ca.pem              an unrelated CA (for "unknown CA" cases)
# Prints DIR on success; exits non-zero (with openssl's output) on failure.
set -eu
dir=${1:?usage: certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
log=certs.log
: > "$log"

run() { "$@" >> "$log" 2>&1 || { cat "$log" >&2; exit 1; }; }

key() { run openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
  -out "$1"; }

names="subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"

# CA: self-signed, basicConstraints CA:TRUE (req -x509 adds it by default)
key ca.key
run openssl req -x509 -new -key ca.key -out ca.pem -days 3650 \
  -subj "/O=netsh test/CN=netsh test CA" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign"
key other-ca.key
run openssl req -x509 -new -key other-ca.key -out other-ca.pem -days 3650 \
  -subj "/O=netsh test/CN=unrelated CA" \
  -addext "basicConstraints=critical,CA:TRUE"

# leaf NAME CN SAN EKU: a CSR signed by the CA for a year
leaf() {
  key "$1.key"
  run openssl req -new -key "$1.key" -out "$1.csr" \
    -subj "/O=netsh test/CN=$2"
  printf '%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=%s\n' "$3" "$4" \
    > "$1.ext"
  run openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key \
    -CAcreateserial -days 365 -extfile "$1.ext" -out "$1.pem"
}
leaf server localhost "$names" serverAuth
leaf wrong wrong.example "subjectAltName=DNS:wrong.example" serverAuth
leaf client "netsh client" "subjectAltName=DNS:client.test" clientAuth

# a chain: the CA signs an intermediate (expiring in 20 days), which signs
# a server certificate (a year); chained.pem is that certificate followed
# by the intermediate, as servers send them
key inter.key
run openssl req -new -key inter.key -out inter.csr \
  -subj "/O=netsh test/CN=netsh test intermediate"
printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n' \
  > inter.ext
run openssl x509 -req -in inter.csr -CA ca.pem -CAkey ca.key \
  -CAcreateserial -days 20 -extfile inter.ext -out inter.pem
key chained.key
run openssl req -new -key chained.key -out chained.csr \
  -subj "/O=netsh test/CN=localhost"
printf '%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
  "$names" > chained.ext
run openssl x509 -req -in chained.csr -CA inter.pem -CAkey inter.key \
  -CAcreateserial -days 365 -extfile chained.ext -out chained-leaf.pem
cat chained-leaf.pem inter.pem > chained.pem

# self-signed server certificate
key self.key
run openssl req -x509 -new -key self.key -out self.pem -days 365 \
  -subj "/O=netsh test/CN=localhost" -addext "$names"

# expired: `x509 -days` refuses negative values, `openssl ca` takes dates
key expired.key
run openssl req -new -key expired.key -out expired.csr \
  -subj "/O=netsh test/CN=localhost"
mkdir -p ca.db
: > ca.db/index.txt
cat > ca.cnf <<CNF
[ca]
default_ca = test
[test]
database = ca.db/index.txt
new_certs_dir = ca.db
serial = ca.db/serial
certificate = ca.pem
private_key = ca.key
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
x509_extensions = ext
[any]
commonName = supplied
organizationName = optional
[ext]
basicConstraints = CA:FALSE
extendedKeyUsage = serverAuth
$names
CNF
echo 1000 > ca.db/serial
run openssl ca -batch -config ca.cnf -in expired.csr -out expired.pem \
  -notext -startdate 20200101000000Z -enddate 20200201000000Z
rm -f ./*.csr ./*.ext
echo "$dir"
