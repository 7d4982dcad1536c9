package shiftkey

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
)

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

// NewID returns an AWS-style unique identifier: prefix (e.g. "AKIA" for an
// access key, "AIDA" for a user) followed by random characters up to 20.
func NewID(prefix string) string {
	b := make([]byte, 20-len(prefix))
	rand.Read(b)
	for i := range b {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return prefix + string(b)
}

// NewSecretKey returns a 40-character secret access key.
func NewSecretKey() string {
	b := make([]byte, 30)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// NewUUID returns a random (version 4) UUID.
func NewUUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const hexd = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hexd[c>>4], hexd[c&15])
	}
	return string(out)
}

// ProcessName names this run of the process, host/pid/id, unique among
// replicas and across restarts (the pid alone is reused): the store's
// owner of session grants, a reconciled revoke's leftBy and the audit
// log's replica.
func ProcessName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), NewUUID())
}
