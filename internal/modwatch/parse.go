// SPDX-License-Identifier: Apache-2.0

package modwatch

import (
	"encoding/binary"
	"fmt"
)

// The fanotify_event_metadata ABI (linux/fanotify.h), spelled out here so
// that the parser builds and is tested on every platform.
const (
	// metadataVersion is FANOTIFY_METADATA_VERSION. The kernel has written
	// version 3 since 2.6.37; another version may lay the fields out
	// differently, so its records are refused rather than guessed at.
	metadataVersion = 3
	// metadataLen is FAN_EVENT_METADATA_LEN, sizeof(struct
	// fanotify_event_metadata): event_len u32, vers u8, reserved u8,
	// metadata_len u16, mask u64, fd s32, pid s32.
	metadataLen = 24

	maskQOverflow = 0x4000 // FAN_Q_OVERFLOW
	noFD          = -1     // FAN_NOFD
)

// rawEvent is one event record as the kernel wrote it.
type rawEvent struct {
	Mask uint64
	FD   int32 // an open descriptor of the file, owned by the reader; noFD for overflow
	PID  int32
}

// parseEvents appends the records of one read(2) of a fanotify group to out.
// A read returns whole records, several at a time; each record says its own
// length (event_len), which is larger than the metadata when the group was
// asked for information records, so the next record is found by event_len,
// never by the metadata size. On a malformed record it returns the records
// before it and an error: the kernel's stream cannot be resynchronised past
// a record whose length is not trusted.
func parseEvents(buf []byte, out []rawEvent) ([]rawEvent, error) {
	for off := 0; off < len(buf); {
		left := len(buf) - off
		if left < metadataLen {
			return out, fmt.Errorf("event at offset %d truncated: %d bytes left, metadata needs %d", off, left, metadataLen)
		}
		b := buf[off:]
		if v := b[4]; v != metadataVersion {
			return out, fmt.Errorf("event at offset %d: metadata version %d, want %d", off, v, metadataVersion)
		}
		eventLen := binary.NativeEndian.Uint32(b[0:4])
		metaLen := binary.NativeEndian.Uint16(b[6:8])
		if eventLen < metadataLen {
			return out, fmt.Errorf("event at offset %d: event_len %d is below the metadata length %d", off, eventLen, metadataLen)
		}
		if uint64(eventLen) > uint64(left) {
			return out, fmt.Errorf("event at offset %d: event_len %d exceeds the %d bytes left", off, eventLen, left)
		}
		if metaLen < metadataLen || uint32(metaLen) > eventLen {
			return out, fmt.Errorf("event at offset %d: metadata_len %d outside [%d, event_len %d]", off, metaLen, metadataLen, eventLen)
		}
		out = append(out, rawEvent{
			Mask: binary.NativeEndian.Uint64(b[8:16]),
			FD:   int32(binary.NativeEndian.Uint32(b[16:20])),
			PID:  int32(binary.NativeEndian.Uint32(b[20:24])),
		})
		off += int(eventLen)
	}
	return out, nil
}
