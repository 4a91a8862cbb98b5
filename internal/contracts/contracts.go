// Package contracts holds the service contracts built into the byoda
// binary, so that a devnet can run a service without a contract file.
package contracts

import (
	"bytes"
	_ "embed"
)

//go:embed addressbook.json
var addressBook []byte

// AddressBook returns a copy of the unsigned address book contract (service
// 4294929430), which the devnet runs by default. Its data classes carry the
// same names, fields and access rules as the address book that other Byoda
// pods serve, so that their records and ours can be exchanged.
func AddressBook() []byte { return bytes.Clone(addressBook) }
