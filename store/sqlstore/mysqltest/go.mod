module github.com/typedsession/session/store/sqlstore/mysqltest

go 1.26.0

replace github.com/typedsession/session => ../../../

require (
	github.com/go-sql-driver/mysql v1.10.1
	github.com/typedsession/session v0.0.0
)

require (
	filippo.io/edwards25519 v1.2.0 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/redis/go-redis/v9 v9.23.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)
