// Package auth holds the login and token machinery of a Byoda pod: the JWTs
// the pod issues to its owner and accepts back, the check of the owner's
// password (ACCOUNT_SECRET), and a throttle that slows password guessing.
//
// # Tokens
//
// The claims keep the reference pod's strings, which clients and service
// servers of a Byoda network already parse: the issuer is "urn: account_id-<uuid>" or
// "urn: member_id-<uuid>" (with the space), the audience a one-element list,
// the scope "urn: <id>.<type>.<network>", and member tokens carry an integer
// service_id. Two things differ on purpose:
//
//   - The algorithm follows the key: ES256 for P-256 keys (the TLS keys),
//     ES384 for P-384 and RS256 for RSA keys of at least 2048 bits (the data
//     keys). The reference declares RS256 for every key and so cannot sign
//     with its own EC keys.
//   - Tokens live DefaultLifetime (hours) rather than a year, and Verify
//     refuses any token whose expiry lies more than MaxLifetime ahead, even
//     one we signed, so a leaked token is worth little.
//
// Tokens carry no "kid" header: as in the reference, the verifier picks the
// key from the unverified issuer (see UnverifiedIssuer), the account's TLS
// certificate for account tokens and the membership's certificate for member
// tokens. When a key is replaced, tokens signed by the old key stop working;
// with lifetimes of hours that costs the owner one login.
//
// Verify reports problems through sentinel errors that an HTTP boundary maps
// to a status. The reference answers 401 for most and 403 for a bad
// signature; this package's callers answer 401 for every token problem
// (ErrMalformed, ErrBadSignature, ErrExpired, ErrNotYetValid,
// ErrLifetimeTooLong, ErrWrongIssuer, ErrWrongAudience), because the client
// has not proven who it is, and 403 for ErrWrongScope, where it has but the
// token was not made for this resource. No error text contains the token.
//
// # Passwords
//
// ACCOUNT_SECRET is either plaintext or an argon2id hash in the PHC string
// format. Both are compared in constant time, and, unlike the reference, a
// copy of the stored hash is not itself a valid password.
//
// # Throttle
//
// Throttle slows repeated failed logins from one client address with an
// exponentially growing delay, in bounded memory.
package auth
