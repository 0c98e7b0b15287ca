package format

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"

	"github.com/typedsession/session/codec"
	"github.com/typedsession/session/internal/errs"
	"github.com/typedsession/session/migrate"
)

// Pipeline is the one way of one session type between stored bytes and
// values, in both directions:
//
//	Decode: bytes → envelope → layers → size limit → migration → payload → value → checks
//	Encode: value → checks → payload → unchanged? → unknown members → migration down → size limit → layers → envelope
//
// Every failure on the way is classed once, by its cause, with the
// sentinels of package errs (see the failure table in the root package's
// doc.go). A Pipeline is immutable after New and safe for concurrent use.
type Pipeline struct {
	f     *Format            // the write codec's format
	read  map[string]*Format // the read codecs' formats, by name
	plan  *migrate.Plan
	cfg   PipelineConfig
	limit int // cfg.MaxBytes, 0 for no limit

	// sizeHint is the length of the last payload encoded, to size the
	// next buffer when there is no stored payload to go by.
	sizeHint atomic.Int64
}

// PipelineConfig configures a Pipeline.
type PipelineConfig struct {
	Codec      codec.Codec   // nil: codec.JSON
	ReadCodecs []codec.Codec // named codecs whose values are read too
	Type       reflect.Type  // the session type T
	// New returns a new *T.
	New func() any
	// Validate checks a *T; its errors are returned as they are (the
	// caller classes them: ErrInvalid).
	Validate     func(v any) error
	Plan         *migrate.Plan
	Latest       int
	WriteVersion int
	Layers       Layers
	// MaxBytes caps the payload as stored (the codec's output at the
	// version written, before compression and sealing), on Encode and on
	// Decode; 0 or less means no limit.
	MaxBytes int
	Unknown  ExtraPolicy
}

// ExtraPolicy is what happens to stored members that T does not have.
type ExtraPolicy int

// The policies (session.ExtraMembers has the same values).
const (
	KeepExtra ExtraPolicy = iota
	RejectExtra
	DropExtra
)

// NewPipeline returns the pipeline of cfg. It does not check the type
// (see Format.CheckType).
func NewPipeline(cfg PipelineConfig) (*Pipeline, error) {
	p := &Pipeline{f: New(cfg.Codec, cfg.Type), plan: cfg.Plan, cfg: cfg, limit: max(cfg.MaxBytes, 0)}
	for _, c := range cfg.ReadCodecs {
		n, ok := c.(codec.Named)
		if !ok || n.Name() == "" {
			return nil, fmt.Errorf("codec %T has no name (codec.Named)", c)
		}
		if n.Name() == p.f.Name() {
			continue
		}
		if p.read == nil {
			p.read = map[string]*Format{}
		}
		if _, dup := p.read[n.Name()]; dup {
			return nil, fmt.Errorf("two codecs named %q", n.Name())
		}
		p.read[n.Name()] = New(c, cfg.Type)
	}
	return p, nil
}

// Format returns the write codec's format.
func (p *Pipeline) Format() *Format { return p.f }

// Stored is what a session knows of the value stored under its key: what
// Encode builds the next value on, and what a write compares against.
type Stored struct {
	// Raw is the stored value as read or written; nil: nothing stored.
	Raw []byte
	// Writes are Raw's write identities, newest first.
	Writes Writes
	// Version is the schema version Raw was stored with (0: no envelope).
	Version int
	// Payload is the codec's encoding of the data at the latest version,
	// in the write codec: Encode compares the next payload with it. For
	// nothing stored, the encoding of the initial value.
	Payload []byte
	// Foreign is true when Raw was written with another codec
	// (Config.ReadCodecs): Payload is in that codec, and the next Encode
	// rewrites it.
	Foreign bool
	// Stale is true when Raw's layers, sealing key or dictionary differ
	// from what would be written now, or its seal is a legacy one
	// (MigrateOptions.Reseal rewrites it).
	Stale bool
}

// Present reports whether something is stored.
func (s *Stored) Present() bool { return s.Raw != nil }

// rawLimit is the largest stored value whose payload can be within
// MaxBytes: room for the header (1 KiB holds every member at its largest),
// for compression that grows its input (deflate and zstd add well under
// 1/64 and 64 bytes), for the seal's nonce and tag, and for base64. A
// larger value cannot hold a payload within MaxBytes, so it is refused
// before it is parsed.
func (p *Pipeline) rawLimit() int {
	if p.limit == 0 {
		return 0
	}
	return (p.limit+p.limit/64+64+28+2)/3*4 + 1024
}

// Decode decodes raw, the value stored under key, into a new *T (from
// PipelineConfig.New), migrating it to the latest version and checking it,
// and returns it with what is known of the stored value.
//
// It decides, in this order: a value over the size limit is ErrTooLarge;
// bytes that are not a value of a codec read are damage (ErrCorrupt); a
// value of a codec not read is ErrUnsupportedCodec; layers are undone (see
// Layers.unwrap), and only then is the envelope's version believed (it is
// authenticated by a seal); a version above the latest is
// ErrFutureVersion; a missing or failing step is ErrMigration; data that
// does not decode into T is ErrCorrupt (damage only when the envelope
// itself proves malformed); members T lacks under RejectExtra are
// ErrCorrupt; a failed check is the Validate func's error.
func (p *Pipeline) Decode(raw []byte, key string) (Stored, any, error) {
	if lim := p.rawLimit(); lim > 0 && len(raw) > lim {
		return Stored{}, nil, errs.New(errs.TooLarge, fmt.Sprintf("stored value is %d bytes; a payload within Config.MaxBytes (%d) is at most %d stored", len(raw), p.limit, lim))
	}
	f, err := p.formatOf(raw)
	if err != nil {
		return Stored{}, nil, err
	}
	env, err := f.Decode(raw)
	if err != nil {
		return Stored{}, nil, errs.Damage(err)
	}
	if env.Codec != "" && env.Codec != f.Name() {
		if f, err = p.readFormat(env.Codec); err != nil {
			return Stored{}, nil, err
		}
	}
	if env.Version != p.cfg.Latest && f.JSONForm() && len(env.Layers) == 0 {
		// Off the hot path, the envelope's payload is proven whole before
		// a version is believed (corrupt comes before future) and before
		// steps see it.
		if err := Check(raw, &env); err != nil {
			return Stored{}, nil, errs.Damage(err)
		}
	}
	st := Stored{Raw: raw, Writes: env.Writes, Version: env.Version, Foreign: f != p.f}
	payload := env.Payload
	if len(env.Layers) > 0 {
		var legacy bool
		if payload, legacy, err = p.cfg.Layers.unwrap(&env, key, p.limit); err != nil {
			return Stored{}, nil, err
		}
		if f.JSONForm() && !json.Valid(payload) {
			return Stored{}, nil, errs.Damage(errors.New("the payload inside the layers is not JSON"))
		}
		env.Checked = true
		st.Stale = p.cfg.Layers.stale(&env, len(payload), legacy)
	} else {
		st.Stale = p.cfg.Layers.on() && p.cfg.Layers.stale(&env, len(payload), false)
	}
	if p.limit > 0 && len(payload) > p.limit {
		return Stored{}, nil, errs.New(errs.TooLarge, fmt.Sprintf("the stored payload is %d bytes, Config.MaxBytes is %d", len(payload), p.limit))
	}
	if env.Version > p.cfg.Latest {
		return Stored{}, nil, errs.New(errs.FutureVersion, fmt.Sprintf("stored version %d, this binary knows up to %d", env.Version, p.cfg.Latest))
	}
	if env.Version < p.cfg.Latest {
		if payload, err = p.migrateUp(f, env.Version, payload); err != nil {
			return Stored{}, nil, err
		}
		env.Checked = true
	}
	v := p.cfg.New()
	if err := f.Unmarshal(raw, &env, payload, v); err != nil {
		if errors.Is(err, ErrMalformed) || !f.wellFormed(payload) {
			// Bytes that are not a value of the codec at all: damage.
			return Stored{}, nil, errs.Damage(err)
		}
		// A value of the codec that does not fit T: this binary's
		// reason (a field's type changed without a step), not damage.
		return Stored{}, nil, errs.Wrap(errs.Corrupt, err)
	}
	if p.cfg.Unknown == RejectExtra {
		if unk := f.Unknown(payload); len(unk) > 0 {
			return Stored{}, nil, errs.New(errs.Corrupt, "stored members that the session type does not have (Config.ExtraMembers is RejectExtra): "+strings.Join(unk, ", "))
		}
	}
	if err := p.cfg.Validate(v); err != nil {
		return Stored{}, nil, err
	}
	st.Payload = payload
	return st, v, nil
}

// formatOf returns the format that reads raw: the pipeline's, or for a
// value in the other envelope form (binary for a JSON codec, JSON for a
// binary one) the format of the read codec it names.
func (p *Pipeline) formatOf(raw []byte) (*Format, error) {
	if p.f.JSONForm() {
		if !bytes.HasPrefix(raw, []byte("\x00TS")) {
			return p.f, nil
		}
		// A binary envelope: no JSON codec wrote it.
		env, err := Decode(raw, false)
		if err != nil {
			return nil, errs.Damage(err)
		}
		return p.readFormat(env.Codec)
	}
	if t := bytes.TrimLeft(raw, " \t\r\n"); len(t) > 0 && (t[0] == '{' || t[0] == '[') && json.Valid(raw) {
		// JSON, for a binary codec: the JSON codec wrote it (an envelope)
		// or another framework did.
		return p.readFormat("json")
	}
	return p.f, nil
}

// readFormat returns the format of the read codec named name.
func (p *Pipeline) readFormat(name string) (*Format, error) {
	if f, ok := p.read[name]; ok {
		return f, nil
	}
	if name == "" {
		name = "(unnamed)"
	}
	return nil, errs.New(errs.UnknownCodec, fmt.Sprintf("the value was written with codec %s; list it in Config.ReadCodecs to read it", name))
}

// migrateUp runs the steps from version to the latest. When the pipeline
// writes an older version, it also checks that each step it crosses at or
// above the write version gives back what it was given, so that a down
// function that does not invert its up function is an error, not a slow
// corruption. Every failure is ErrMigration: a missing step or a step's
// own error or panic is this binary's, not damage of the value.
func (p *Pipeline) migrateUp(f *Format, version int, payload []byte) ([]byte, error) {
	payload, err := p.plan.Up(f.Codec(), version, p.cfg.Latest, payload)
	if err != nil {
		return nil, errs.Wrap(errs.Migration, err)
	}
	if p.cfg.WriteVersion < p.cfg.Latest && version >= p.cfg.WriteVersion && f == p.f {
		if err := p.checkRoundTrip(payload); err != nil {
			return nil, err
		}
	}
	return payload, nil
}

// checkRoundTrip checks, for a pipeline that writes an older version, that
// payload (at the latest version) survives the way down to the write
// version and up again: the steps' down functions must invert their up
// functions, or every save of a session nobody changed would write
// different data. The data is compared as T encodes it, so member order
// and members T does not have do not count. It returns ErrMigration
// wrapping migrate.ErrNotInverse.
func (p *Pipeline) checkRoundTrip(payload []byte) error {
	c := p.f.Codec()
	down, err := p.plan.Down(c, p.cfg.Latest, p.cfg.WriteVersion, payload)
	if err != nil {
		return errs.Wrap(errs.Migration, err)
	}
	back, err := p.plan.Up(c, p.cfg.WriteVersion, p.cfg.Latest, down)
	if err != nil {
		return errs.Wrap(errs.Migration, err)
	}
	a, aerr := p.canonical(payload)
	b, berr := p.canonical(back)
	if aerr != nil || berr != nil || !bytes.Equal(a, b) {
		steps := fmt.Sprintf("the steps %d→%d do not give back what they were given (down, then up)", p.cfg.WriteVersion, p.cfg.Latest)
		return &errs.Error{Kind: errs.Migration, Cause: migrate.ErrNotInverse,
			Msg:  fmt.Sprintf("%s: %s became %s; fix the down function", steps, shortBytes(a), shortBytes(b)),
			Safe: steps + "; fix the down function"}
	}
	return nil
}

// canonical is payload decoded into T and encoded again.
func (p *Pipeline) canonical(payload []byte) ([]byte, error) {
	v := p.cfg.New()
	if err := p.f.Unmarshal(nil, nil, payload, v); err != nil {
		return nil, err
	}
	return p.f.AppendPayload(nil, v)
}

func shortBytes(b []byte) string {
	if len(b) > 80 {
		return string(b[:77]) + "..."
	}
	return string(b)
}

// InitialPayload returns the payload of v, the initial value of a new
// session (a *T), for Stored.Payload of nothing stored.
func (p *Pipeline) InitialPayload(v any) ([]byte, error) {
	b, err := p.f.AppendPayload(nil, v)
	if err != nil {
		return nil, encodeError(err)
	}
	return b, nil
}

// Encoded is the result of Encode.
type Encoded struct {
	// Same is true when the data equals what prev holds and nothing
	// else asks for a write: prev's version is at least the write
	// version, and the value was read with the write codec. Bytes is
	// then nil unless Encode was asked for them.
	Same bool
	// Bytes is the value to store, with a new write identity, ID, on
	// top of prev's (Writes).
	Bytes  []byte
	ID     string
	Writes Writes
	// Payload is the data's payload at the latest version, for the
	// next Encode's comparison (Stored.Payload).
	Payload []byte
	// Extra lists the stored members that T does not have, met while
	// comparing with prev (reported by the save).
	Extra []string
}

// Stored returns the Stored of e's value once it is written.
func (e *Encoded) Stored(version int) Stored {
	return Stored{Raw: e.Bytes, Writes: e.Writes, Version: version, Payload: e.Payload}
}

// Encode checks v (a *T) and encodes it to be stored under key in place of
// prev. With build false it stops once it knows the data is the same as
// prev's (Encoded.Same); with build true it always builds Bytes (a move
// to another key, a reseal).
//
// Errors, by cause: a failed check is the Validate func's error; a value
// the codec cannot encode, or that would not read back as it is (and a
// panic in the codec) is ErrInvalid; a step down that fails or does not
// invert its step up is ErrMigration; a payload over MaxBytes is
// ErrTooLarge.
func (p *Pipeline) Encode(v any, prev *Stored, key string, build bool) (Encoded, error) {
	if err := p.cfg.Validate(v); err != nil {
		return Encoded{}, err
	}
	hint := len(prev.Payload)
	if hint == 0 {
		hint = int(p.sizeHint.Load())
	}
	hlen := HeaderLenFor(p.f.JSONForm(), p.cfg.WriteVersion, min(prev.Writes.Len()+1, MaxWrites))
	buf, err := p.f.AppendPayload(make([]byte, hlen, hlen+hint+2), v)
	if err != nil {
		return Encoded{}, encodeError(err)
	}
	if n := int64(len(buf) - hlen); p.sizeHint.Load() != n {
		p.sizeHint.Store(n)
	}
	payload := buf[hlen:]
	e := Encoded{Payload: payload}
	same := !prev.Foreign && bytes.Equal(payload, prev.Payload)
	if !same && prev.Present() && !prev.Foreign {
		if payload, same, err = p.reconcile(prev, payload, &e); err != nil {
			return Encoded{}, err
		}
	}
	e.Same = same && !prev.Foreign && (!prev.Present() || prev.Version >= p.cfg.WriteVersion)
	if e.Same && !build {
		return e, nil
	}
	if err := p.envelope(&e, prev, key, buf, payload); err != nil {
		return Encoded{}, err
	}
	return e, nil
}

// Check reports what Encode would refuse in v itself: a failed check, a
// value the codec cannot store or read back, a step down that fails or
// does not invert its step up, a payload over MaxBytes as stored (at the
// write version; see asStored). Only what v's stored predecessor adds (its
// members T lacks, which Encode keeps) is beyond it.
func (p *Pipeline) Check(v any) error {
	if err := p.cfg.Validate(v); err != nil {
		return err
	}
	b, err := p.f.AppendPayload(nil, v)
	if err != nil {
		return encodeError(err)
	}
	_, err = p.asStored(b)
	return err
}

// asStored returns payload, the codec's payload at the latest version, as
// it is stored: taken down to the write version (after checking that the
// steps it crosses give back what they were given), and within MaxBytes.
// It is the one measure of MaxBytes on the way out, for Encode and Check
// alike; Decode measures the same bytes on the way in (the stored
// payload, before any step runs).
func (p *Pipeline) asStored(payload []byte) ([]byte, error) {
	if p.cfg.WriteVersion < p.cfg.Latest {
		// What goes down must come back up the same, or a binary of the
		// latest version would read other data than this one saved.
		if err := p.checkRoundTrip(payload); err != nil {
			return nil, err
		}
		var err error
		if payload, err = p.plan.Down(p.f.Codec(), p.cfg.Latest, p.cfg.WriteVersion, payload); err != nil {
			return nil, errs.Wrap(errs.Migration, err)
		}
	}
	if p.limit > 0 && len(payload) > p.limit {
		return nil, errs.New(errs.TooLarge, fmt.Sprintf("the payload is %d bytes, Config.MaxBytes is %d", len(payload), p.limit))
	}
	return payload, nil
}

// encodeError classes an error of the codec's encoding: the data is what
// is wrong (ErrInvalid), a panic in a MarshalJSON method included.
func encodeError(err error) error {
	var pe *PanicError
	if errors.As(err, &pe) {
		return &errs.Error{Kind: errs.Invalid, Cause: err, Msg: "the codec panicked: " + pe.Error()}
	}
	return errs.Wrap(errs.Invalid, err)
}

// reconcile compares a changed-looking payload with prev's more closely.
// It puts back stored members that T does not have (by the unknown-member
// policy) and, when prev's payload is not T's own encoding (migrated, or
// holding members T does not have), compares the data as loaded with the
// data as saved, both encoded from T, so that member order alone is not a
// change. It returns the payload to write and whether it equals prev's.
func (p *Pipeline) reconcile(prev *Stored, payload []byte, e *Encoded) ([]byte, bool, error) {
	if !p.f.JSONForm() {
		return payload, false, nil
	}
	unk := p.f.Unknown(prev.Payload)
	same := false
	if prev.Version != p.cfg.Latest || len(unk) > 0 {
		if again, err := p.canonical(prev.Payload); err == nil && bytes.Equal(again, payload) {
			same = true
		}
	}
	if len(unk) == 0 {
		return payload, same, nil
	}
	// Whether or not the data changed, what is written (a migration, a
	// move to another key) carries the members T does not have.
	e.Extra = unk
	if p.cfg.Unknown == DropExtra {
		return payload, same, nil
	}
	merged, err := p.f.Merge(prev.Payload, payload)
	if err != nil {
		return nil, false, errs.Wrap(errs.Invalid, err)
	}
	return merged, same, nil
}

// envelope builds e.Bytes from payload (at the latest version) at the
// write version, with a new write identity on top of prev's. When payload
// still lies in buf after the room Encode left, the header goes into that
// room: one buffer, no copy.
func (p *Pipeline) envelope(e *Encoded, prev *Stored, key string, buf, payload []byte) error {
	latest := payload
	payload, err := p.asStored(payload)
	if err != nil {
		return err
	}
	id := NewWriteID()
	env := Envelope{Version: p.cfg.WriteVersion, Writes: prev.Writes.Next(id), Payload: payload}
	if !p.f.JSONForm() {
		env.Codec = p.f.Name() // the binary frame says which codec wrote it
	}
	layered := p.cfg.Layers.on()
	if layered {
		if err := p.cfg.Layers.wrap(&env, key); err != nil {
			return err
		}
	}
	jf := p.f.JSONForm()
	hlen := len(buf) - len(payload)
	var enc []byte
	if !layered && hlen >= 0 && len(payload) > 0 && &buf[hlen] == &payload[0] && HeaderLen(jf, &env) == hlen {
		AppendHeader(buf[:0], jf, &env)
		enc = AppendTrailer(buf, jf)
	} else {
		enc = Append(make([]byte, 0, HeaderLen(jf, &env)+len(env.Payload)+1+len(env.Payload)/3), jf, &env)
	}
	e.Bytes, e.ID, e.Writes, e.Payload = enc, id, env.Writes, latest
	return nil
}

// WritesOf returns the write identities of a stored value in either
// envelope form, and false when raw is not a value with identities that
// decodes (damaged bytes, a value of version 0 or of the first release).
func WritesOf(raw []byte) (Writes, bool) {
	e, err := Decode(raw, !bytes.HasPrefix(raw, []byte("\x00TS")))
	if err != nil || e.Writes.Len() == 0 {
		return "", false
	}
	return e.Writes, true
}

// wellFormed reports whether payload is one value of f's codec, whatever
// its shape: JSON that json.Valid accepts, or for another codec bytes it
// decodes into an interface. A payload that is not is damaged; one that is
// but does not decode into T is not.
func (f *Format) wellFormed(payload []byte) (ok bool) {
	if f.jsonForm {
		return json.Valid(payload)
	}
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	var v any
	return f.codec.Unmarshal(payload, &v) == nil
}
