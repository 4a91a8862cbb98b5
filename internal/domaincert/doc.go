// Package domaincert provides the TLS certificate of a pod's custom domain,
// the public DNS name that browsers use for the account instead of its name
// in the network.
//
// A [Source] holds the certificate and keeps it current. It comes from one of
// two places:
//
//   - [NewManaged]: the pod is its own ACME client. It proves control of the
//     domain with the HTTP-01 challenge, which the ACME server fetches from
//     port 80 of the domain's address ([Source.HTTPHandler] answers it),
//     keeps the ACME account key, the certificate's key (both encrypted
//     like every other key of the pod) and the chain on local disk, and
//     renews the certificate in-process when a third of its lifetime is
//     left. A restart serves the stored certificate and asks the CA for
//     nothing until it is due.
//   - [NewFiles]: someone else, typically certbot run from cron, renews the
//     certificate into a Let's Encrypt directory. The source reads
//     live/<domain>/fullchain.pem and privkey.pem and checks them again
//     every poll interval; renewed files replace the served certificate
//     without a restart, and files that are bad or half-written are logged
//     and ignored while the previous certificate is kept.
//
// Until a first certificate exists, [Source.GetCertificate] fails, so a TLS
// handshake for the domain fails instead of presenting a certificate for
// another name. Those who serve the certificate by other means (a web
// server in front of the pod) read it with [Source.Current] and learn of
// changes through [Source.Subscribe].
package domaincert
