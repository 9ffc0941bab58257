// SPDX-License-Identifier: Apache-2.0

//go:build linux

package tracer

import (
	"reflect"
	"testing"

	"github.com/mitmexec/mitmexec/internal/event"
	"github.com/mitmexec/mitmexec/internal/wire"
)

// The pure decoder in internal/event hard-codes struct exec_event's layout;
// this pins it to what bpf2go generated from the C.
func TestLayoutMatchesC(t *testing.T) {
	typ := reflect.TypeOf(mitmexecExecEvent{})
	if int(typ.Size()) != event.RecordSize {
		t.Errorf("sizeof(struct exec_event) = %d, event.RecordSize = %d", typ.Size(), event.RecordSize)
	}
	offsets := event.Offsets()
	for name, off := range offsets {
		f, ok := typ.FieldByName(name)
		if !ok {
			t.Errorf("field %s: not in the generated struct", name)
			continue
		}
		if int(f.Offset) != off {
			t.Errorf("field %s: C offset %d, decoder offset %d", name, f.Offset, off)
		}
	}
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		if _, ok := offsets[f.Name]; !ok && f.Name != "_" && f.Name != "Pad" && f.Name != "Pad2" {
			t.Errorf("field %s of the C struct is not decoded", f.Name)
		}
	}
	if got := reflect.TypeOf(mitmexecAncestor{}).Size(); got != 32 {
		t.Errorf("sizeof(struct ancestor) = %d, decoder assumes 32", got)
	}
	if got := reflect.TypeOf(mitmexecFingerprintKey{}).Size(); got != event.HeadLen {
		t.Errorf("sizeof(struct fingerprint_key) = %d", got)
	}
}

// The frame decoder in internal/wire hard-codes struct frame_event's layout.
func TestFrameLayoutMatchesC(t *testing.T) {
	typ := reflect.TypeOf(mitmexecFrameEvent{})
	if int(typ.Size()) != wire.RecordSize {
		t.Errorf("sizeof(struct frame_event) = %d, wire.RecordSize = %d", typ.Size(), wire.RecordSize)
	}
	offsets := wire.Offsets()
	for name, off := range offsets {
		f, ok := typ.FieldByName(name)
		if !ok {
			t.Errorf("field %s: not in the generated struct", name)
			continue
		}
		if int(f.Offset) != off {
			t.Errorf("field %s: C offset %d, decoder offset %d", name, f.Offset, off)
		}
	}
	for i := 0; i < typ.NumField(); i++ {
		if f := typ.Field(i); f.Name != "_" {
			if _, ok := offsets[f.Name]; !ok {
				t.Errorf("field %s of the C struct is not decoded", f.Name)
			}
		}
	}
}
