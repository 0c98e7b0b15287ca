package format

import (
	"bytes"
	"encoding/gob"
	"reflect"
	"strings"
	"testing"
)

// gobCodec is a binary codec whose rules this package knows nothing of:
// CheckType finds what it does not read back by the round trip alone.
type gobCodec struct{}

func (gobCodec) Name() string { return "gob" }

func (gobCodec) Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	err := gob.NewEncoder(&b).Encode(v)
	return b.Bytes(), err
}

func (gobCodec) Unmarshal(data []byte, v any) error {
	return gob.NewDecoder(bytes.NewReader(data)).Decode(v)
}

type (
	gobItems struct{ items []string }
	gobChan  struct {
		N  int
		Ch chan int // gob leaves channels out
	}
	gobNested struct {
		Name  string
		Inner struct{ Ch chan int }
	}
	gobFine struct {
		N int
		P *int
		M map[string][]string
		A any
		T struct{ X, Y float64 }
	}
)

func TestCheckTypeWithAnUnknownBinaryCodec(t *testing.T) {
	for _, tc := range []struct {
		typ  reflect.Type
		want string // "" for accepted
	}{
		{reflect.TypeFor[gobItems](), "format.gobItems"},
		{reflect.TypeFor[gobChan](), "format.gobChan.Ch does not come back"},
		{reflect.TypeFor[gobNested](), "Inner"},
		{reflect.TypeFor[gobFine](), ""},
		{reflect.TypeFor[[]gobFine](), ""},
	} {
		err := New(gobCodec{}, tc.typ).CheckType(tc.typ)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("CheckType(%s) = %v, want nil", tc.typ, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("CheckType(%s) = %v, want an error naming %s", tc.typ, err, tc.want)
		}
	}
}
