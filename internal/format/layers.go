package format

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/typedsession/session/codec"
	"github.com/typedsession/session/internal/errs"
	"github.com/typedsession/session/seal"
)

// The layers of a stored value, in the order they are applied:
//
//	T --codec--> payload --(compression)--> --(sealing)--> envelope --> store
//
// The unchanged check compares the codec's output, before compression and
// sealing, so a fresh nonce never turns an unchanged session into a write.
// The envelope records each layer by name ("deflate", "aes-256-gcm"), the
// sealing key's ID and the compression dictionary's ID, so that a value says
// how to read it back.

// Layers configures the layers a pipeline writes and reads.
type Layers struct {
	// Compressor compresses payloads longer than CompressAbove bytes;
	// nil compresses nothing.
	Compressor    codec.Compressor
	CompressAbove int
	// Keyring seals every value written; nil seals nothing.
	Keyring *seal.Keyring
	// Namespace is bound into the associated data of sealed values.
	Namespace string
}

// on reports whether values are written with layers at all.
func (l *Layers) on() bool { return l.Keyring != nil || l.Compressor != nil }

// plan sets e's layer fields for a payload of n bytes: what wrap writes.
func (l *Layers) plan(e *Envelope, n int) {
	e.Layers, e.KeyID, e.DictID = nil, "", ""
	if l.Compressor != nil && n > l.CompressAbove {
		e.Layers = append(e.Layers, l.Compressor.Name())
		e.DictID = l.Compressor.DictID()
	}
	if l.Keyring != nil {
		e.Layers = append(e.Layers, seal.Name)
		e.KeyID = l.Keyring.SealingKeyID()
	}
}

// wrap sets e's layer fields and replaces e.Payload, the codec's payload,
// by its layered form for key. Everything else in e (version, codec) must
// be set already: sealing authenticates it.
func (l *Layers) wrap(e *Envelope, key string) error {
	l.plan(e, len(e.Payload))
	data := e.Payload
	if l.Compressor != nil && len(data) > l.CompressAbove {
		out, err := l.Compressor.Compress(nil, data)
		if err != nil {
			return fmt.Errorf("compress: %w", err)
		}
		data = out
	}
	if l.Keyring != nil {
		out, kid, err := l.Keyring.Seal(nil, data, l.associatedData(e, key))
		if err != nil {
			return fmt.Errorf("seal: %w", err)
		}
		if kid != e.KeyID {
			return fmt.Errorf("seal: sealed with key %q, not the keyring's first key %q", kid, e.KeyID)
		}
		data = out
	}
	e.Payload = data
	return nil
}

// unwrap undoes the layers of e for key, last first, and returns the
// codec's payload, at most maxPayload bytes (0: no limit), and whether a
// seal was opened with the associated data of values sealed before the
// envelope's header was authenticated (a legacy seal).
//
// Errors, by cause: a key the keyring lacks is ErrNoSealingKey; a layer or a
// dictionary this pipeline is not configured for is ErrUnsupportedCodec; output
// over maxPayload is ErrTooLarge; a seal that does not open and data that
// does not decompress are damage (ErrCorrupt, quarantinable).
func (l *Layers) unwrap(e *Envelope, key string, maxPayload int) (data []byte, legacy bool, err error) {
	data = e.Payload
	for i := len(e.Layers) - 1; i >= 0; i-- {
		switch name := e.Layers[i]; {
		case name == seal.Name:
			if l.Keyring == nil || !l.Keyring.Has(e.KeyID) {
				return nil, false, errs.New(errs.UnknownKey, fmt.Sprintf("sealed with key ID %q, which Config.Keyring does not hold", e.KeyID))
			}
			out, err := l.Keyring.Open(nil, data, l.associatedData(e, key), e.KeyID)
			if err != nil {
				// A value sealed before the header was authenticated
				// opens with the associated data of then: the
				// namespace and the key.
				if out, lerr := l.Keyring.Open(nil, data, l.legacyAssociatedData(key), e.KeyID); lerr == nil {
					data, legacy = out, true
					continue
				}
				return nil, false, errs.Damage(err)
			}
			data = out
		case l.Compressor != nil && name == l.Compressor.Name():
			out, err := l.Compressor.Decompress(nil, data, e.DictID, maxPayload)
			switch {
			case errors.Is(err, codec.ErrOverLimit):
				return nil, false, errs.New(errs.TooLarge, fmt.Sprintf("the payload decompresses to more than %d bytes (Config.MaxBytes)", maxPayload))
			case errors.Is(err, codec.ErrNoDictionary):
				return nil, false, errs.Wrap(errs.UnknownCodec, err)
			case err != nil:
				return nil, false, errs.Damage(err)
			}
			data = out
		default:
			return nil, false, errs.New(errs.UnknownCodec, fmt.Sprintf("the value has a layer %q that this manager is not configured for (Config.Compressor, Config.Keyring)", name))
		}
	}
	return data, legacy, nil
}

// stale reports whether a value whose payload is n bytes, stored with
// e's layers (legacy: a legacy seal), has other layers or another sealing
// key or dictionary than would be written now.
func (l *Layers) stale(e *Envelope, n int, legacy bool) bool {
	var want Envelope
	l.plan(&want, n)
	return legacy || !slices.Equal(want.Layers, e.Layers) || want.KeyID != e.KeyID || want.DictID != e.DictID
}

// adTag begins the associated data of every value sealed since the
// envelope's header is authenticated.
const adTag = "typedsession/ad2\x00"

// associatedData binds a sealed value to the namespace, the session key
// and everything in its envelope that decides how its payload is read:
// the schema version, the codec, the layers, the key ID and the
// dictionary ID (each length-prefixed, so the encoding is unambiguous). A
// value copied to another key or namespace, or whose header was edited,
// does not open.
func (l *Layers) associatedData(e *Envelope, key string) []byte {
	n := len(adTag) + len(l.Namespace) + len(key) + len(e.Codec) + len(e.KeyID) + len(e.DictID) + 32
	for _, s := range e.Layers {
		n += len(s) + 2
	}
	ad := make([]byte, 0, n)
	ad = append(ad, adTag...)
	ad = appendField(ad, l.Namespace)
	ad = appendField(ad, key)
	ad = binary.AppendUvarint(ad, uint64(e.Version))
	ad = appendField(ad, e.Codec)
	ad = binary.AppendUvarint(ad, uint64(len(e.Layers)))
	for _, s := range e.Layers {
		ad = appendField(ad, s)
	}
	ad = appendField(ad, e.KeyID)
	return appendField(ad, e.DictID)
}

// legacyAssociatedData is the associated data of values sealed by the
// first release with sealing: the namespace and the key only.
func (l *Layers) legacyAssociatedData(key string) []byte {
	ad := make([]byte, 0, len(l.Namespace)+len(key)+4)
	ad = appendField(ad, l.Namespace)
	return appendField(ad, key)
}

func appendField(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}
