// Package pki implements the certificate hierarchy of a Byoda network.
//
// A network is a DNS domain with a self-signed root CA. Under the root, the
// accounts CA signs the certificates of pods (accounts), the services CA signs
// one service CA per service, and each service CA signs the members CA, the
// apps CA and the service's own TLS and data certificates. The members CA
// signs the certificates a pod holds for its memberships.
//
// Every certificate's common name encodes what it is, for example
// "<uuid>.members-<sid>.<network>"; [ParseName] reads that grammar and [Name]
// writes it. A [CA] reviews certificate signing requests against the policy
// of its kind before signing them, and a [Verifier] checks that a chain
// leads to the network root through exactly the CAs its names say, with one
// service id throughout.
//
// TLS and CA keys are EC P-256, data keys RSA-4096; RSA keys are accepted
// everywhere, as the live byoda.net root is RSA. Private keys are stored as
// encrypted PKCS#8 files that OpenSSL reads and writes.
package pki
