package msgpack_test

import (
	"context"
	"fmt"

	"github.com/typedsession/session"
	"github.com/typedsession/session/codec"
	"github.com/typedsession/session/codecs/msgpack"
	"github.com/typedsession/session/store/memstore"
)

type Cart struct {
	Items []string `json:"items"`
	Total int64    `json:"total"`
}

// A manager that writes MessagePack and still reads the JSON sessions written
// before the switch (Config.ReadCodecs): a codec change is a deploy.
func Example() {
	st, err := memstore.New(memstore.Options{})
	if err != nil {
		panic(err)
	}
	defer st.Close()
	m, err := session.New(session.Config[Cart]{
		Store:      st,
		Namespace:  "cart",
		Codec:      msgpack.Codec{},
		ReadCodecs: []codec.Codec{codec.JSON{}},
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	cart, err := m.Update(ctx, "user-1", func(c *Cart) error {
		c.Items = append(c.Items, "tea")
		c.Total += 350
		return nil
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(cart.Items, cart.Total)
	// Output: [tea] 350
}

// The types a migrate.Raw step's document holds with this codec.
func ExampleCodec_Unmarshal_rawDocument() {
	c := msgpack.Codec{}
	b, err := c.Marshal(map[string]any{"n": uint8(7), "neg": -2, "f": 0.5, "l": []string{"x"}, "m": map[string]int{"k": 1}})
	if err != nil {
		panic(err)
	}
	var doc map[string]any
	if err := c.Unmarshal(b, &doc); err != nil {
		panic(err)
	}
	for _, k := range []string{"n", "neg", "f", "l", "m"} {
		fmt.Printf("%s: %T\n", k, doc[k])
	}
	// Output:
	// n: int64
	// neg: int64
	// f: float64
	// l: []interface {}
	// m: map[string]interface {}
}
