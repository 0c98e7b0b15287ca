// Package envelope frames a session's encoded data with its schema version.
//
// Two framings exist, chosen by the codec:
//
//   - JSON, for codecs whose payload is JSON: {"typedsession":N,"data":PAYLOAD}.
//     The stored value stays readable JSON.
//   - Binary, for every other codec: the four bytes "\x00TS\x01", the version
//     as a uvarint, then the payload.
//
// A value is enveloped if and only if it begins with the exact prefix of its
// framing (`{"typedsession":` or "\x00TS\x01"). Anything else is data written
// without an envelope (by an older app or another framework): version 0.
// There is no guessing from the shape of the data.
package envelope

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

const (
	jsonPrefix = `{"typedsession":`
	jsonData   = `,"data":`
	binPrefix  = "\x00TS\x01"
)

// ErrMalformed reports a value that starts like an envelope but is not one.
var ErrMalformed = errors.New("malformed envelope")

// Encode appends the envelope of payload at version to dst.
func Encode(dst []byte, jsonForm bool, version int, payload []byte) []byte {
	dst = AppendHeader(dst, jsonForm, version)
	dst = append(dst, payload...)
	return AppendTrailer(dst, jsonForm)
}

// AppendHeader appends what Encode writes before the payload. A caller that
// appends the payload itself and then calls AppendTrailer builds the same
// bytes as Encode without a separate payload buffer.
func AppendHeader(dst []byte, jsonForm bool, version int) []byte {
	if jsonForm {
		dst = append(dst, jsonPrefix...)
		dst = strconv.AppendInt(dst, int64(version), 10)
		return append(dst, jsonData...)
	}
	dst = append(dst, binPrefix...)
	return binary.AppendUvarint(dst, uint64(version))
}

// AppendTrailer appends what Encode writes after the payload.
func AppendTrailer(dst []byte, jsonForm bool) []byte {
	if jsonForm {
		return append(dst, '}')
	}
	return dst
}

// Size returns len(Encode(nil, jsonForm, version, payload)).
func Size(jsonForm bool, version int, payload []byte) int {
	if jsonForm {
		return len(jsonPrefix) + len(strconv.Itoa(version)) + len(jsonData) + len(payload) + 1
	}
	var tmp [binary.MaxVarintLen64]byte
	return len(binPrefix) + binary.PutUvarint(tmp[:], uint64(version)) + len(payload)
}

// Decode splits raw into its version and payload. A value without an
// envelope is version 0 with raw as its payload. The payload may share
// memory with raw. A value that begins like an envelope but cannot be
// split, or that claims a version below 1, gives an error wrapping
// ErrMalformed.
func Decode(raw []byte, jsonForm bool) (version int, payload []byte, err error) {
	if !jsonForm {
		if !bytes.HasPrefix(raw, []byte(binPrefix)) {
			return 0, raw, nil
		}
		v, n := binary.Uvarint(raw[len(binPrefix):])
		if n <= 0 || v < 1 || v > 1<<31 {
			return 0, nil, fmt.Errorf("%w: bad version header", ErrMalformed)
		}
		return int(v), raw[len(binPrefix)+n:], nil
	}
	if !bytes.HasPrefix(raw, []byte(jsonPrefix)) {
		return 0, raw, nil
	}
	if v, p, ok := fastJSON(raw); ok {
		return v, p, nil
	}
	return slowJSON(raw)
}

// fastJSON splits the exact form that Encode writes without scanning the
// payload. The payload is checked later by the codec that decodes it.
func fastJSON(raw []byte) (int, []byte, bool) {
	rest := raw[len(jsonPrefix):]
	i := 0
	for i < len(rest) && i < 10 && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	if i == 0 || (rest[0] == '0') {
		return 0, nil, false
	}
	v, err := strconv.Atoi(string(rest[:i]))
	if err != nil || v < 1 {
		return 0, nil, false
	}
	rest = rest[i:]
	if !bytes.HasPrefix(rest, []byte(jsonData)) || len(rest) < len(jsonData)+2 || rest[len(rest)-1] != '}' {
		return 0, nil, false
	}
	return v, rest[len(jsonData) : len(rest)-1], true
}

// slowJSON parses an envelope that a person or another tool reformatted.
func slowJSON(raw []byte) (int, []byte, error) {
	var env struct {
		Version *int            `json:"typedsession"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return 0, nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if env.Version == nil || *env.Version < 1 {
		return 0, nil, fmt.Errorf("%w: version must be a positive integer", ErrMalformed)
	}
	if env.Data == nil {
		return 0, nil, fmt.Errorf("%w: no data", ErrMalformed)
	}
	return *env.Version, env.Data, nil
}

// Reparse splits raw with a full JSON parse. Callers use it when the codec
// rejects the payload found by the fast path, in case the value is a valid
// envelope with members the fast path does not expect.
func Reparse(raw []byte) (int, []byte, error) { return slowJSON(raw) }
