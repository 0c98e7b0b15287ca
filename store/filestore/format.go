package filestore

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strings"

	"github.com/typedsession/session/store"
)

// File names. A value file is named after its key in one of two ways:
//
//	"k" + base32(key)      when that name is at most maxDirectName bytes:
//	                       keys of up to maxDirectKey (124) bytes
//	"h" + hex(sha256(key)) otherwise (65 bytes, whatever the key's length)
//
// The base32 alphabet is the lower-case "extended hex" one, without
// padding: it uses only [0-9a-v], so names are safe on every file system,
// hold no '/', '.', NUL or reserved device name, and stay distinct on
// case-insensitive file systems. Every other name in dir (temp files, the
// lock folder, files somebody else put there) starts with a different
// character or fails to decode, and is not a key.
//
// A write in progress is a temp file named "." + name + ".tmp-" + digits
// (what [storeutil.WriteFileAtomic] creates); versions before it named
// them ".tmp-" + digits, which New and the sweep still clean up.
const (
	directPrefix    = 'k'
	hashedPrefix    = 'h'
	legacyTempStart = ".tmp-"
	tempInfix       = ".tmp-"
	lockDir         = ".locks"
	maxDirectName   = 200 // longest direct name: 1 + ceil(8*124/5) bytes
	// maxDirectKey is the longest key with a direct (readable, decodable)
	// name: 1 + ceil(8*124/5) = 200 bytes, while 125 bytes take 201.
	maxDirectKey = 124
)

var nameEncoding = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// fileName returns the name of the file that holds key.
func fileName(key string) string {
	if len(key) <= maxDirectKey {
		buf := make([]byte, 1+nameEncoding.EncodedLen(len(key)))
		buf[0] = directPrefix
		nameEncoding.Encode(buf[1:], []byte(key))
		return string(buf)
	}
	sum := sha256.Sum256([]byte(key))
	return string(hashedPrefix) + hex.EncodeToString(sum[:])
}

// nameKind tells what a directory entry is. For a direct name it also
// returns the key the name encodes.
type nameKind int

const (
	foreignName nameKind = iota // not ours: ignored by Scan and the sweep
	tempName                    // a temp file of ours, perhaps left by a crash
	directName                  // a value file whose name is its key
	hashedName                  // a value file whose key is in its header
)

func classify(name string) (nameKind, string) {
	switch {
	case name == "":
		return foreignName, ""
	case name[0] == '.':
		if isTempName(name) {
			return tempName, ""
		}
		return foreignName, ""
	case name[0] == directPrefix:
		if len(name) > maxDirectName {
			return foreignName, ""
		}
		enc := name[1:]
		key, err := nameEncoding.DecodeString(enc)
		if err != nil || nameEncoding.EncodeToString(key) != enc {
			return foreignName, ""
		}
		return directName, string(key)
	case name[0] == hashedPrefix:
		if len(name) != 1+2*sha256.Size {
			return foreignName, ""
		}
		for _, c := range name[1:] {
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return foreignName, ""
			}
		}
		return hashedName, ""
	}
	return foreignName, ""
}

// isTempName reports a temp file of the store's: "." + a value file's
// name + ".tmp-" + digits, or the legacy ".tmp-" + anything.
func isTempName(name string) bool {
	if strings.HasPrefix(name, legacyTempStart) {
		return true
	}
	i := strings.LastIndex(name, tempInfix)
	if i < 2 || name[0] != '.' {
		return false
	}
	digits := name[i+len(tempInfix):]
	if digits == "" {
		return false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	kind, _ := classify(name[1:i])
	return kind == directName || kind == hashedName
}

// File format, version 1. All integers are big-endian.
//
//	offset  size  field
//	0       4     magic "TSF" followed by the format version, 0x01
//	4       8     expiry: absolute Unix time in nanoseconds, 0 = never
//	12      4     key length K (at most store.MaxKeyLen)
//	16      4     value length V
//	20      4     CRC-32C of bytes 0..19, the key and the value
//	24      K     the key, exactly as given
//	24+K    V     the value
//
// The file is exactly 24+K+V bytes long. Anything else is corrupt.
const headerSize = 24

var magic = [4]byte{'T', 'S', 'F', 1}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// header is the parsed fixed part of a file.
type header struct {
	expiry int64
	kl, vl int64
}

// parseHeader checks the fixed part of a file of size bytes: the magic,
// the key length, and the lengths against the size. It does not check the
// checksum, which covers the key and the value.
func parseHeader(h []byte, size int64) (header, error) {
	if [4]byte(h[:4]) != magic {
		return header{}, formatErrorf("bad magic %q, want %q", h[:4], magic[:])
	}
	hd := header{
		expiry: int64(binary.BigEndian.Uint64(h[4:])),
		kl:     int64(binary.BigEndian.Uint32(h[12:])),
		vl:     int64(binary.BigEndian.Uint32(h[16:])),
	}
	if hd.kl == 0 || hd.kl > store.MaxKeyLen {
		return header{}, formatErrorf("key length %d, want 1 to %d", hd.kl, store.MaxKeyLen)
	}
	if want := headerSize + hd.kl + hd.vl; size != want {
		return header{}, formatErrorf("%d bytes, header says %d", size, want)
	}
	return hd, nil
}

// writeRecord writes the whole file for key, value and expiry to w, in two
// writes (header and key, then the value) so that the value is not copied.
func writeRecord(w io.Writer, key string, value []byte, expiry int64) error {
	buf := make([]byte, headerSize+len(key))
	copy(buf, magic[:])
	binary.BigEndian.PutUint64(buf[4:], uint64(expiry))
	binary.BigEndian.PutUint32(buf[12:], uint32(len(key)))
	binary.BigEndian.PutUint32(buf[16:], uint32(len(value)))
	copy(buf[headerSize:], key)
	crc := crc32.Update(0, castagnoli, buf[:20])
	crc = crc32.Update(crc, castagnoli, buf[headerSize:])
	crc = crc32.Update(crc, castagnoli, value)
	binary.BigEndian.PutUint32(buf[20:], crc)
	if _, err := w.Write(buf); err != nil {
		return err
	}
	if len(value) == 0 {
		return nil
	}
	_, err := w.Write(value)
	return err
}

// encode returns the whole file for key, value and expiry.
func encode(key string, value []byte, expiry int64) []byte {
	var b bytes.Buffer
	writeRecord(&b, key, value, expiry) // a bytes.Buffer does not fail
	return b.Bytes()
}

// record is a parsed file. value aliases the buffer it was parsed from.
type record struct {
	expiry int64
	key    string
	value  []byte
}

// decode parses a whole file. Its error is a formatError.
func decode(data []byte) (record, error) {
	if len(data) < headerSize {
		return record{}, formatErrorf("%d bytes, shorter than the %d-byte header", len(data), headerSize)
	}
	hd, err := parseHeader(data[:headerSize], int64(len(data)))
	if err != nil {
		return record{}, err
	}
	crc := crc32.Update(0, castagnoli, data[:20])
	crc = crc32.Update(crc, castagnoli, data[headerSize:])
	if got := binary.BigEndian.Uint32(data[20:]); got != crc {
		return record{}, formatErrorf("checksum %08x, header says %08x", crc, got)
	}
	return record{
		expiry: hd.expiry,
		key:    string(data[headerSize : headerSize+hd.kl]),
		value:  data[headerSize+hd.kl:],
	}, nil
}

// readFile reads a value file whole, unless its header says the value is
// longer than maxValue (> 0): then it returns the parsed header and a nil
// record value with tooLarge set, having read only the header. A file that
// does not parse gives a formatError.
func readFile(path string, maxValue int64) (rec record, hd header, tooLarge bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return record{}, header{}, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return record{}, header{}, false, err
	}
	size := fi.Size()
	var h [headerSize]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return record{}, header{}, false, formatErrorf("%d bytes, shorter than the %d-byte header", size, headerSize)
		}
		return record{}, header{}, false, err
	}
	hd, err = parseHeader(h[:], size)
	if err != nil {
		return record{}, header{}, false, err
	}
	if maxValue > 0 && hd.vl > maxValue {
		return record{}, hd, true, nil
	}
	data := make([]byte, size)
	copy(data, h[:])
	if _, err := io.ReadFull(f, data[headerSize:]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return record{}, header{}, false, formatErrorf("file shrank while it was read")
		}
		return record{}, header{}, false, err
	}
	rec, err = decode(data)
	return rec, hd, false, err
}

// readHeader reads the expiry of a file and, when withKey is set, its key,
// without reading its value, for Scan and the sweep. It checks what it
// reads (magic, lengths against the file's size) but not the checksum,
// which covers the value.
func readHeader(path string, withKey bool) (expiry int64, key string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	var h [headerSize]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return 0, "", formatErrorf("shorter than the %d-byte header", headerSize)
		}
		return 0, "", err
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, "", err
	}
	hd, err := parseHeader(h[:], fi.Size())
	if err != nil || !withKey {
		return hd.expiry, "", err
	}
	k := make([]byte, hd.kl)
	if _, err := io.ReadFull(f, k); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return 0, "", formatErrorf("file ends inside the key")
		}
		return 0, "", err
	}
	return hd.expiry, string(k), nil
}

// formatError says what is wrong with a file that exists but is not a valid
// value file. Callers turn it into an error that wraps store.ErrCorrupt.
type formatError string

func (e formatError) Error() string { return string(e) }

func formatErrorf(format string, args ...any) error {
	return formatError(fmt.Sprintf(format, args...))
}
