// Package snippets compiles every Go snippet of the repository's README.md
// and docs/*.md, so that a snippet that stops compiling fails a test:
//
//	cd docs/snippets && go test ./...
//
// # How a snippet is compiled
//
// Every ```go block is type-checked, all of them in one go vet, each as a
// package of its own. Compile errors name the Markdown file and line.
//
//   - A block that starts with a package clause is a whole file, compiled
//     as it is: it must import what it uses.
//   - Any other block is a fragment. A fragment of declarations (types,
//     functions, variables) is put at the top level of a file; a fragment
//     of statements is put in the body of a function, where a variable it
//     declares and does not use is no error. Either way the test adds the
//     import of every package the fragment names (any package deps.go
//     imports, by its package name: session, redis, http, ...), and the
//     declarations of this file that the fragment does not declare itself:
//     a fragment may use ctx, st, rdb, m, botToken, Quiz and Prefs without
//     declaring them.
//   - A block preceded by the line <!-- snippet: needs session.Manager.Validate -->
//     (a package name, then a function or Type.Method) is compiled only
//     once that function or method exists in the repository; until then
//     the test logs that it skipped it. <!-- snippet: skip REASON --> skips
//     a block for good; say why.
//
// Blocks that are not Go (shell commands, output, stored values) are
// ```sh or ```text blocks, which the test leaves alone.
package snippets

import (
	"context"
	"database/sql"
	"net/http"

	"github.com/redis/go-redis/v9"

	"github.com/typedsession/session"
	"github.com/typedsession/session/store"
)

// What a fragment may use without declaring it.
var (
	ctx      context.Context        // a request's or an update's context
	st       store.Store            // any store
	rdb      redis.UniversalClient  // a go-redis client
	db       *sql.DB                // an open database
	m        *session.Manager[Quiz] // the quiz's manager
	mux      *http.ServeMux         // a router
	botToken string                 // a Telegram bot token
	userID   string                 // a session key
	handler  http.Handler           // an application's handler
)

// Quiz is the session of the README's quick start.
type Quiz struct {
	Active   bool     `json:"active"`
	Question int      `json:"question" validate:"gte=0,lte=50"`
	Score    int      `json:"score"`
	Answers  []string `json:"answers" validate:"max=50"`
}

// Prefs is the session of the web examples.
type Prefs struct {
	Theme string `json:"theme" validate:"omitempty,oneof=light dark"`
}
