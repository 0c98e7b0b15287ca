package cbor_test

import "github.com/typedsession/session/codecs/cbor"

// testCodec is the codec session_test.go runs its conformance tests on.
var testCodec = cbor.Codec{}
