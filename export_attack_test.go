package session

import (
	"context"
	"reflect"
)

// UpdateRefs returns how many Updates of key through m hold or wait for
// the key's in-process lock, so that a test can line Updates up.
func UpdateRefs[T any](m *Manager[T], key string) int { return m.updates.Refs(key) }

// UpdateLocks returns how many keys m's Update lock table holds: 0 when no
// Update is running.
func UpdateLocks[T any](m *Manager[T]) int { return m.updates.Len() }

// Handoff is s.handoff for the tests of the external package.
func Handoff[T any](ctx context.Context, s *Session[T]) (*Session[T], bool) { return s.handoff(ctx) }

// MayHaveTags is mayHaveTags for the tests.
func MayHaveTags(typ reflect.Type) bool { return mayHaveTags(typ, map[reflect.Type]bool{}) }

// UpdateWait is updateWait for the tests.
const UpdateWait = updateWait
