// SPDX-License-Identifier: Apache-2.0

package mitmexecreceiver

import (
	"net/netip"
	"testing"

	"github.com/mitmexec/mitmexec/internal/wire"
)

// A spoofer that cycles through addresses gets at most
// maxAddressesPerSender records per class and interface, however many
// addresses it claims, and the memory stays bounded.
func TestClaimsSeenBoundsRecordsPerSender(t *testing.T) {
	s := newClaimsSeen()
	sender := claimKey{pid: 42, start: 7, class: wire.ClassARP, ifindex: 2}
	records := 0
	for i := 0; i < 20000; i++ {
		k := sender
		k.address = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if s.add(k) {
			records++
		}
	}
	if records != maxAddressesPerSender {
		t.Errorf("%d records for one sender cycling 20,000 addresses, want %d", records, maxAddressesPerSender)
	}
	other := sender
	other.class, other.address = wire.ClassNA, netip.MustParseAddr("fd00::1")
	if !s.add(other) || s.add(other) {
		t.Errorf("another class of the same sender: want one record, then folded")
	}
	for i := 0; i < 3*maxClaimsSeen; i++ { // many senders
		k := claimKey{pid: uint32(1000 + i), class: wire.ClassARP, ifindex: 2, address: netip.MustParseAddr("10.0.0.1")}
		s.add(k)
	}
	if s.seen.Len() > maxClaimsSeen || s.perSender.Len() > maxClaimsSeen+1 {
		t.Errorf("memory: %d claims, %d senders remembered, bound %d", s.seen.Len(), s.perSender.Len(), maxClaimsSeen)
	}
}
