package session

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/typedsession/session/codec"
	"github.com/typedsession/session/internal/format"
	"github.com/typedsession/session/seal"
	"github.com/typedsession/session/store"
)

// The layers of a stored value, in the order they are applied:
//
//	T --codec--> payload --(compression)--> --(sealing)--> envelope --> store
//
// The unchanged check compares the codec's output, before compression and
// sealing, so a fresh nonce never turns an unchanged session into a write.
// The envelope records each layer by name ("deflate", "aes-256-gcm"), the
// sealing key's ID and the compression dictionary's ID, so that a value says
// how to read it back, and a manager reads values written without layers
// or with other keys of its keyring.

// defaultCompressAbove is Config.CompressAbove's default.
const defaultCompressAbove = 1024

// associatedData binds a sealed value to the manager's namespace and the
// session key, in an unambiguous form (each length-prefixed), so a value
// copied to another key or namespace does not open.
func (m *Manager[T]) associatedData(key string) []byte {
	ad := make([]byte, 0, len(m.namespace)+len(key)+4)
	ad = binary.AppendUvarint(ad, uint64(len(m.namespace)))
	ad = append(ad, m.namespace...)
	ad = binary.AppendUvarint(ad, uint64(len(key)))
	return append(ad, key...)
}

// layered reports whether the manager writes layers at all.
func (m *Manager[T]) layered() bool { return m.keyring != nil || m.compressor != nil }

// wrap applies the configured layers to payload for key and fills e's
// layer fields.
func (m *Manager[T]) wrap(e *format.Envelope, key string, payload []byte) error {
	data := payload
	e.Layers, e.KeyID, e.DictID = nil, "", ""
	if m.compressor != nil && len(data) > m.compressAbove {
		out, err := m.compressor.Compress(nil, data)
		if err != nil {
			return fmt.Errorf("compress: %w", err)
		}
		data = out
		e.Layers = append(e.Layers, m.compressor.Name())
		e.DictID = m.compressor.DictID()
	}
	if m.keyring != nil {
		out, kid, err := m.keyring.Seal(nil, data, m.associatedData(key))
		if err != nil {
			return fmt.Errorf("seal: %w", err)
		}
		data = out
		e.Layers = append(e.Layers, seal.Name)
		e.KeyID = kid
	}
	e.Payload = data
	return nil
}

// unwrap undoes the layers of e for key, last first, and returns the
// codec's payload. A value sealed with a key the keyring lacks gives
// ErrUnknownKey; one that does not open or decompress, or names a layer
// this manager does not have, gives ErrCorrupt.
func (m *Manager[T]) unwrap(e *format.Envelope, key string) ([]byte, error) {
	data := e.Payload
	for i := len(e.Layers) - 1; i >= 0; i-- {
		switch name := e.Layers[i]; {
		case name == seal.Name:
			if m.keyring == nil || !m.keyring.Has(e.KeyID) {
				return nil, &kindError{kind: ErrUnknownKey, msg: fmt.Sprintf("sealed with key ID %q, which Config.Keyring does not hold", e.KeyID)}
			}
			out, err := m.keyring.Open(nil, data, m.associatedData(key), e.KeyID)
			if err != nil {
				return nil, &kindError{kind: ErrCorrupt, cause: err, damaged: true}
			}
			data = out
		case m.compressor != nil && name == m.compressor.Name():
			limit := m.maxBytes
			if limit < 0 {
				limit = 0
			}
			out, err := m.compressor.Decompress(nil, data, e.DictID, limit)
			if err != nil {
				return nil, &kindError{kind: ErrCorrupt, cause: err, damaged: true}
			}
			data = out
		default:
			return nil, &kindError{kind: ErrCorrupt, msg: fmt.Sprintf("the value has a layer %q that this manager is not configured for (Config.Compressor, Config.Keyring)", name)}
		}
	}
	return data, nil
}

// stale reports whether the value s was loaded from has other layers or
// another sealing key than the manager would write now, for
// MigrateOptions.Reseal.
func (m *Manager[T]) stale(s *Session[T]) bool {
	var want format.Envelope
	if m.wrap(&want, s.key, s.payload) != nil {
		return false
	}
	return !slices.Equal(want.Layers, s.layers) || want.KeyID != s.keyID || want.DictID != s.dictID
}

// QuarantinePrefix begins the store key of every value that
// Config.Quarantine moved aside: ":quarantine:" (no namespace contains ':',
// so no namespace's scan meets it), then the time of the move in Unix
// nanoseconds, ':', and the value's store key.
const QuarantinePrefix = ":quarantine:"

// quarantinable reports whether err, from decoding a stored value, says
// the value is damaged by its content: it does not parse, open or migrate.
// A newer schema, a key this binary lacks, a failed validation (tags may
// have been tightened), a size over MaxBytes and a store error are not.
func quarantinable(err error) bool {
	var ke *kindError
	if !errors.As(err, &ke) {
		return false
	}
	return ke.damaged
}

// quarantine moves raw, the damaged value under s's key, to a quarantine
// key and leaves s a new session. The move writes the copy only where
// nothing is, then removes the original with compare-and-delete, so a
// value written in between is never lost: the copy is then removed again
// and ErrConflict returned.
func (m *Manager[T]) quarantine(ctx context.Context, s *Session[T], raw []byte, cause error) error {
	qkey := QuarantinePrefix + strconv.FormatInt(time.Now().UnixNano(), 10) + ":" + s.storeKey
	if err := store.CheckKey(qkey); err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	if m.swapper != nil {
		ok, err := m.swapper.CompareAndSwap(ctx, qkey, nil, raw, 0)
		if err != nil {
			return fmt.Errorf("quarantine: %w", storeError(err))
		}
		if !ok {
			return fmt.Errorf("quarantine: %w: key %s is taken", ErrConflict, quoteKey(qkey))
		}
	} else if err := m.store.Set(ctx, qkey, raw, 0); err != nil {
		return fmt.Errorf("quarantine: %w", storeError(err))
	}
	if _, err := m.remove(ctx, s.storeKey, raw); err != nil {
		if _, uerr := m.remove(ctx, qkey, raw); uerr != nil {
			err = errors.Join(err, uerr)
		}
		return fmt.Errorf("quarantine: %w", err)
	}
	s.quarantined = qkey
	s.quarantineCause = cause
	return m.renew(s)
}

var _ codec.Compressor = codec.Deflate{}
