// Package contract reads, checks and signs service contracts: the JSON
// documents in which a service declares its data model and who may do what
// with the data of its members.
//
// A contract is signed twice, first by the service and then by the network.
// Both signatures are made over the canonical form of the contract (see
// Canonical), which every implementation of the protocol must reproduce
// byte for byte, so the canonical form follows the reference implementation
// exactly, down to the way it prints floating-point numbers.
package contract
