package fibersession_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/gofiber/fiber/v2"

	session "github.com/typedsession/session"
	fibersession "github.com/typedsession/session/adapters/fiber"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store/memstore"
)

// Cart is a session type of the example.
type Cart struct {
	Items []string `json:"items" validate:"max=10"`
}

func Example() {
	st, _ := memstore.New(memstore.Options{})
	defer st.Close()
	carts, _ := session.New(session.Config[Cart]{Store: st, Namespace: "cart"})

	app := fiber.New()
	app.Use(fibersession.Middleware(carts, middleware.HTTPOptions{}))
	app.Post("/cart", func(c *fiber.Ctx) error {
		s, err := fibersession.From[Cart](c)
		if err != nil {
			return err
		}
		s.Data.Items = append(s.Data.Items, c.Query("item"))
		return c.JSON(s.Data)
	})

	var cookie *http.Cookie
	for _, item := range []string{"tea", "milk"} {
		req := httptest.NewRequest(http.MethodPost, "/cart?item="+item, nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		res, _ := app.Test(req, -1)
		if cs := res.Cookies(); len(cs) > 0 {
			cookie = cs[0]
		}
		body, _ := io.ReadAll(res.Body)
		fmt.Println(string(body))
	}
	// Output:
	// {"items":["tea"]}
	// {"items":["tea","milk"]}
}
