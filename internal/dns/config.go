package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"strings"
	"time"

	mdns "github.com/miekg/dns"
)

// Defaults for the zero fields of a Config.
const (
	DefaultTTL           = 300 * time.Second
	DefaultApexTTL       = time.Hour
	DefaultLookupTimeout = 2 * time.Second
)

// maxTTL is the largest TTL a record may carry (RFC 2181, section 8).
const maxTTL = math.MaxInt32 * time.Second

// ErrInvalidConfig is wrapped by every error Config.Validate returns.
var ErrInvalidConfig = errors.New("invalid dns config")

// LookupFunc returns the current address of a dynamic name: a fully
// qualified name in lower case without the trailing dot, such as
// "<uuid>.accounts.byoda.test". found is false when the name is not
// registered; err reports a storage failure, and the query is then answered
// SERVFAIL. When found is true, addr must be valid.
type LookupFunc func(ctx context.Context, name string) (addr netip.Addr, found bool, err error)

// Config configures a Server. Fields left zero take the defaults given in
// brackets.
type Config struct {
	// Zone is the network domain, such as "byoda.test". Required.
	Zone string

	// Lookup finds the addresses of account, member and service names.
	// Required.
	Lookup LookupFunc

	// Static maps fixed names in the zone, such as "dir.byoda.test", to their
	// addresses. IPv4-mapped IPv6 addresses count as IPv4. A name with an
	// empty list exists but has no address records. A static name takes
	// precedence over a dynamic one.
	Static map[string][]netip.Addr

	// NameServers are the host names in the apex NS records; the first one
	// is also the primary name server of the SOA record. ["dir.<Zone>"]
	NameServers []string

	// Hostmaster is the mailbox of the SOA record, in domain name form.
	// ["hostmaster.<Zone>"]
	Hostmaster string

	// TTL is the time to live of address records and the negative-caching
	// time of the zone. [DefaultTTL]
	TTL time.Duration

	// ApexTTL is the time to live of the SOA and NS records. [DefaultApexTTL]
	ApexTTL time.Duration

	// LookupTimeout bounds each call to Lookup. [DefaultLookupTimeout]
	LookupTimeout time.Duration

	// Logger receives warnings about failed lookups and the server's start
	// and stop. [discard]
	Logger *slog.Logger
}

// Validate reports whether c can configure a Server, before defaults are
// applied. Its errors wrap ErrInvalidConfig.
func (c Config) Validate() error {
	if err := c.validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}

	return nil
}

func (c Config) validate() error {
	zone := canonicalName(c.Zone)
	if zone == "" || !isDomainName(zone) {
		return fmt.Errorf("zone %q is not a domain name", c.Zone)
	}
	if c.Lookup == nil {
		return errors.New("lookup function is missing")
	}

	if err := validateStatic(zone, c.Static); err != nil {
		return err
	}
	for _, ns := range c.NameServers {
		if !isDomainName(canonicalName(ns)) {
			return fmt.Errorf("name server %q is not a domain name", ns)
		}
	}
	if c.Hostmaster != "" && (strings.Contains(c.Hostmaster, "@") ||
		!isDomainName(canonicalName(c.Hostmaster))) {
		return fmt.Errorf("hostmaster %q is not in domain name form", c.Hostmaster)
	}

	return validateDurations(c)
}

func validateStatic(zone string, static map[string][]netip.Addr) error {
	for name, addrs := range static {
		canonical := canonicalName(name)
		if !isDomainName(canonical) || !inZone(canonical, zone) {
			return fmt.Errorf("static name %q is not a name in zone %s", name, zone)
		}
		for _, addr := range addrs {
			if !addr.IsValid() {
				return fmt.Errorf("static name %q has an invalid address", name)
			}
		}
	}

	return nil
}

func validateDurations(c Config) error {
	durations := []struct {
		name  string
		value time.Duration
		limit time.Duration
	}{
		{"ttl", c.TTL, maxTTL},
		{"apex ttl", c.ApexTTL, maxTTL},
		{"lookup timeout", c.LookupTimeout, math.MaxInt64},
	}
	for _, d := range durations {
		if d.value < 0 || d.value > d.limit {
			return fmt.Errorf("%s %v is out of range", d.name, d.value)
		}
	}

	return nil
}

// withDefaults returns a copy of c with canonical names and the zero fields
// filled in.
func (c Config) withDefaults() Config {
	c.Zone = canonicalName(c.Zone)
	if len(c.NameServers) == 0 {
		c.NameServers = []string{"dir." + c.Zone}
	}
	if c.Hostmaster == "" {
		c.Hostmaster = "hostmaster." + c.Zone
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.ApexTTL == 0 {
		c.ApexTTL = DefaultApexTTL
	}
	if c.LookupTimeout == 0 {
		c.LookupTimeout = DefaultLookupTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}

	return c
}

// canonicalName is the form names take inside this package: lower case,
// without the trailing dot of the root.
func canonicalName(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

// isDomainName reports whether a canonical name is a valid, non-root domain
// name.
func isDomainName(name string) bool {
	if name == "" {
		return false
	}
	_, ok := mdns.IsDomainName(name)

	return ok
}

// inZone reports whether the canonical name is zone or lies below it.
func inZone(name, zone string) bool {
	return name == zone || strings.HasSuffix(name, "."+zone)
}

// seconds converts a validated TTL to the unit records carry.
func seconds(d time.Duration) uint32 {
	return uint32(d / time.Second)
}
