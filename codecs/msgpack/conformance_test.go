package msgpack_test

import (
	"testing"

	"github.com/typedsession/session/codec/codectest"
)

// TestConformance runs the codec conformance suite on testCodec.
func TestConformance(t *testing.T) { codectest.Run(t, testCodec) }

// FuzzSessionRoundTrip is the values property of the session package
// with testCodec (its corpus is in testdata/fuzz).
func FuzzSessionRoundTrip(f *testing.F) { codectest.FuzzSessionRoundTrip(f, testCodec) }
