package snippets

// The packages a snippet may use, by their package name, without importing
// them: the test adds the import of each name a fragment uses. A name
// must be unique here (crypto/rand, not math/rand too). Add a package
// here, then run go mod tidy, to let snippets use it.
import (
	_ "context"
	_ "crypto/rand"
	_ "crypto/subtle"
	_ "database/sql"
	_ "encoding/json"
	_ "errors"
	_ "fmt"
	_ "io"
	_ "log"
	_ "log/slog"
	_ "math"
	_ "net/http"
	_ "os"
	_ "strconv"
	_ "strings"
	_ "sync"
	_ "testing"
	_ "time"

	_ "github.com/go-playground/validator/v10"
	_ "github.com/go-telegram/bot"
	_ "github.com/go-telegram/bot/models"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/redis/go-redis/v9"

	_ "github.com/typedsession/session"
	_ "github.com/typedsession/session/codec"
	_ "github.com/typedsession/session/codec/codectest"
	_ "github.com/typedsession/session/conversation"
	_ "github.com/typedsession/session/middleware"
	_ "github.com/typedsession/session/middleware/pglock"
	_ "github.com/typedsession/session/middleware/redislock"
	_ "github.com/typedsession/session/middleware/tgbot"
	_ "github.com/typedsession/session/migrate"
	_ "github.com/typedsession/session/seal"
	_ "github.com/typedsession/session/store"
	_ "github.com/typedsession/session/store/filestore"
	_ "github.com/typedsession/session/store/memstore"
	_ "github.com/typedsession/session/store/redisstore"
	_ "github.com/typedsession/session/store/sqlstore"
	_ "github.com/typedsession/session/store/storetest"
)
