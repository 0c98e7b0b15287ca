package ginsession_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/gin-gonic/gin"

	session "github.com/typedsession/session"
	ginsession "github.com/typedsession/session/adapters/gin"
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

	r := gin.New()
	r.Use(ginsession.Middleware(carts, middleware.HTTPOptions{}))
	r.POST("/cart", func(c *gin.Context) {
		s, err := ginsession.From[Cart](c)
		if err != nil {
			c.AbortWithError(http.StatusInternalServerError, err)
			return
		}
		s.Data.Items = append(s.Data.Items, c.Query("item"))
		c.JSON(http.StatusOK, s.Data)
	})

	var cookie *http.Cookie
	for _, item := range []string{"tea", "milk"} {
		req := httptest.NewRequest(http.MethodPost, "/cart?item="+item, nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		if cs := rec.Result().Cookies(); len(cs) > 0 {
			cookie = cs[0]
		}
		fmt.Println(rec.Body.String())
	}
	// Output:
	// {"items":["tea"]}
	// {"items":["tea","milk"]}
}
