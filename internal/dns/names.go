package dns

import (
	"strconv"
	"strings"
)

// nameKind says what a name below the zone apex is, by its labels alone.
type nameKind int

const (
	// kindUnknown names are not part of the network's naming scheme.
	kindUnknown nameKind = iota

	// kindStructural names are the subdomain labels under which dynamic
	// names live: "accounts", "members-<sid>" and "service-<sid>".
	kindStructural

	// kindDynamic names are account, member and service names, whose
	// addresses come from the lookup function.
	kindDynamic
)

// Subdomain labels of the network's naming scheme.
const (
	accountsLabel      = "accounts"
	membersLabelPrefix = "members-"
	serviceLabelPrefix = "service-"
	serviceIdentifier  = "service"
)

// classify tells the kind of a canonical name relative to the zone, that is
// with ".<zone>" removed.
func classify(relative string) nameKind {
	identifier, subdomain, twoLabels := strings.Cut(relative, ".")
	if !twoLabels {
		if isSubdomain(relative) {
			return kindStructural
		}

		return kindUnknown
	}

	if isDynamic(identifier, subdomain) {
		return kindDynamic
	}

	return kindUnknown
}

// isSubdomain reports whether label is one of the structural labels.
func isSubdomain(label string) bool {
	return label == accountsLabel ||
		isServiceScoped(label, membersLabelPrefix) ||
		isServiceScoped(label, serviceLabelPrefix)
}

// isDynamic reports whether identifier.subdomain is an account, member or
// service name. A subdomain that holds further dots does not qualify.
func isDynamic(identifier, subdomain string) bool {
	switch {
	case subdomain == accountsLabel, isServiceScoped(subdomain, membersLabelPrefix):
		return isUUID(identifier)
	case isServiceScoped(subdomain, serviceLabelPrefix):
		return identifier == serviceIdentifier
	}

	return false
}

// isServiceScoped reports whether label is prefix followed by a service id.
func isServiceScoped(label, prefix string) bool {
	sid, ok := strings.CutPrefix(label, prefix)

	return ok && isServiceID(sid)
}

// isServiceID reports whether s is a service id in canonical form: a decimal
// uint32 without sign or leading zeros.
func isServiceID(s string) bool {
	if len(s) > 1 && s[0] == '0' {
		return false
	}
	_, err := strconv.ParseUint(s, 10, 32)

	return err == nil
}

// isUUID reports whether s is a uuid in its canonical lower-case
// 8-4-4-4-12 form.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isLowerHex(c) {
				return false
			}
		}
	}

	return true
}

func isLowerHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f'
}
