// Package mysqltest holds the MySQL and MariaDB tests of package
// github.com/typedsession/session/store/sqlstore: the conformance suite,
// the persistence cases, a cross-process counter and the table checks, run
// against a real server through github.com/go-sql-driver/mysql.
//
// It is a package of the sqlstore module, not of the core module, so that
// the driver, which only these tests need, is no dependency of the core;
// package sqlstore itself imports no driver. The package has no API.
//
// The tests reach the server at MYSQL_DSN, by default
// root@tcp(127.0.0.1:3306)/test; they skip when none answers, and fail
// instead when CI=true.
package mysqltest
