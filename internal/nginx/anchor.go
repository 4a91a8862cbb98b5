package nginx

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
)

// oidClientAuth is the extended key usage of TLS client authentication.
var oidClientAuth = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 2}

// certTrust is OpenSSL's X509_CERT_AUX with only its first field: the
// purposes a certificate is trusted for.
type certTrust struct {
	Trust []asn1.ObjectIdentifier
}

// ClientCAFile returns the ssl_client_certificate file that makes nginx
// accept the client certificates under ca, and only those.
//
// Every self-signed certificate of such a file anchors trust, and a chain
// may end at no other: a file of a service CA with the services CA and
// the root, as the reference writes, lets the root anchor the members of
// every service. OpenSSL also reads a "TRUSTED CERTIFICATE" block, a
// certificate followed by the purposes it is trusted for; marked as
// trusted for client authentication, the service CA is an anchor by
// itself, and the root stays out of the file. nginx reads the CA names it
// sends to clients with a reader that skips such blocks, so the file holds
// the plain certificate as well, which OpenSSL's store then ignores as a
// duplicate.
func ClientCAFile(ca *x509.Certificate) ([]byte, error) {
	aux, err := asn1.Marshal(certTrust{Trust: []asn1.ObjectIdentifier{oidClientAuth}})
	if err != nil {
		return nil, fmt.Errorf("nginx: encoding trust settings: %w", err)
	}

	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s, trusted for client authentication\n", ca.Subject.CommonName)
	pem.Encode(&b, &pem.Block{Type: "TRUSTED CERTIFICATE",
		Bytes: append(bytes.Clone(ca.Raw), aux...)})
	pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
	return b.Bytes(), nil
}
