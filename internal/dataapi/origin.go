// Package dataapi is the Data API of a pod: the actions on a membership's
// data classes, the data firewall that authorises each one against the
// service's contract, the fan-out of changes to subscribers and the queries
// that travel across the pods of a person's network.
package dataapi

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// SignatureFormatVersion is the only format of origin signatures.
const SignatureFormatVersion = 1

// ErrOriginSignature is returned when a query's origin signature does not
// verify.
var ErrOriginSignature = errors.New("origin signature does not verify")

// OriginQuery is what an origin signature covers.
type OriginQuery struct {
	ServiceID uint32
	Relations []string

	// Timestamp is the query's timestamp exactly as the origin wrote it,
	// in ISO 8601 form.
	Timestamp string

	OriginMemberID string

	// Filter is the query's filter as received: field -> operator -> JSON
	// value, with numbers kept as json.Number so that 1 and 1.0 stay apart.
	Filter map[string]map[string]json.RawMessage
}

// Plaintext returns the bytes an origin signature of format version 1
// covers. It reproduces the reference byte for byte, including the way it
// doubles the text built so far for every filter field, which pods of the
// reference depend on.
func (q OriginQuery) Plaintext() (string, error) {
	p := strconv.FormatUint(uint64(q.ServiceID), 10)
	if len(q.Relations) > 0 {
		p += strings.Join(q.Relations, " ") + q.Timestamp
	}
	p += q.OriginMemberID

	if len(q.Filter) == 0 {
		return p, nil
	}
	p += ",{"

	fields := make([]string, 0, len(q.Filter))
	for f := range q.Filter {
		fields = append(fields, f)
	}
	sort.Strings(fields)

	for _, f := range fields {
		p += f + ":"
		ops := make([]string, 0, len(q.Filter[f]))
		for op := range q.Filter[f] {
			ops = append(ops, op)
		}
		sort.Strings(ops)

		for _, op := range ops {
			v, err := pythonStr(q.Filter[f][op])
			if err != nil {
				return "", fmt.Errorf("filter %s.%s: %w", f, op, err)
			}
			p += "{" + op + `:"` + v + `"},`
		}
		p = p + strings.TrimRight(p, ",") + "}"
	}
	return p, nil
}

// pythonStr renders a JSON scalar as Python's str() renders the value json
// parsing gives: strings as they are, integers in decimal, floats as repr,
// booleans as True and False.
func pythonStr(raw json.RawMessage) (string, error) {
	var v any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", err
	}

	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		if x {
			return "True", nil
		}
		return "False", nil
	case nil:
		return "None", nil
	case json.Number:
		if !strings.ContainsAny(x.String(), ".eE") {
			return x.String(), nil
		}
		f, err := x.Float64()
		if err != nil {
			return "", err
		}
		return pythonFloat(f), nil
	}
	return "", fmt.Errorf("filter values must be scalars")
}

// pythonFloat formats f as Python's repr does.
func pythonFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}

	exp := 0
	if f != 0 {
		exp = int(math.Floor(math.Log10(math.Abs(f))))
	}
	if exp < -4 || exp >= 16 {
		s := strconv.FormatFloat(f, 'e', -1, 64)
		mant, e, _ := strings.Cut(s, "e")
		sign := e[0]
		digits := strings.TrimLeft(e[1:], "0")
		if len(digits) < 2 {
			digits = strings.Repeat("0", 2-len(digits)) + digits
		}
		return mant + "e" + string(sign) + digits
	}

	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// SignOrigin signs q with a member data key, for the pods a query travels
// to.
func SignOrigin(q OriginQuery, key crypto.Signer) (string, error) {
	plain, err := q.Plaintext()
	if err != nil {
		return "", err
	}
	if _, ok := key.Public().(*rsa.PublicKey); !ok {
		return "", errors.New("origin signatures need an RSA member data key")
	}

	digest := sha256.Sum256([]byte(plain))
	sig, err := key.Sign(rand.Reader, digest[:], &rsa.PSSOptions{
		SaltLength: rsa.PSSSaltLengthAuto, Hash: crypto.SHA256})
	if err != nil {
		return "", fmt.Errorf("signing query origin: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// VerifyOrigin checks an origin signature with the origin member's data
// certificate.
func VerifyOrigin(q OriginQuery, signature string, cert *x509.Certificate) error {
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return fmt.Errorf("%w: the origin's data certificate has no RSA key",
			ErrOriginSignature)
	}
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return fmt.Errorf("%w: not base64", ErrOriginSignature)
	}
	plain, err := q.Plaintext()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrOriginSignature, err)
	}

	digest := sha256.Sum256([]byte(plain))
	if err := rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig,
		&rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}); err != nil {
		return ErrOriginSignature
	}
	return nil
}

// PythonISOTime formats t as Python's datetime.isoformat() does for an
// aware UTC time: microseconds only when non-zero, and a +00:00 offset.
func PythonISOTime(t time.Time) string {
	t = t.UTC()
	s := t.Format("2006-01-02T15:04:05")
	if us := t.Nanosecond() / 1000; us != 0 {
		s += fmt.Sprintf(".%06d", us)
	}
	return s + "+00:00"
}
