package echosession_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/labstack/echo/v4"

	session "github.com/typedsession/session"
	echosession "github.com/typedsession/session/adapters/echo"
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

	e := echo.New()
	e.Use(echosession.Middleware(carts, middleware.HTTPOptions{}))
	e.POST("/cart", func(c echo.Context) error {
		s, err := echosession.From[Cart](c)
		if err != nil {
			return err
		}
		s.Data.Items = append(s.Data.Items, c.FormValue("item"))
		return c.JSON(http.StatusOK, s.Data)
	})

	var cookie *http.Cookie
	for _, item := range []string{"tea", "milk"} {
		req := httptest.NewRequest(http.MethodPost, "/cart?item="+item, nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if cs := rec.Result().Cookies(); len(cs) > 0 {
			cookie = cs[0]
		}
		fmt.Print(rec.Body.String())
	}
	// Output:
	// {"items":["tea"]}
	// {"items":["tea","milk"]}
}
