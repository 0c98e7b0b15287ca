package conversation

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/typedsession/session/migrate"
)

// MigrateStep returns a step of the session's migrate.Plan, from version
// from to from+1, that converts the data of every stored step named
// StepName[New]() from Old to New with fn: the current step of each
// frame and the steps in each frame's history, whatever the flow. field
// is the JSON member of the session's top-level object that holds the
// State (as its json tag names it). Keep the step's type name when its
// data changes; Old is the old shape under any name. It is a raw step
// (migrate.Raw) over the JSON codec's document; a session without the
// member, or with no conversation, passes through unchanged. A frame whose
// data does not decode into Old, or an error from fn, fails the step:
// Load returns session.ErrMigration naming it, and the stored value stays.
func MigrateStep[Old, New any](from int, field string, fn func(Old) (New, error)) migrate.Step {
	name := StepName[New]()
	conv := func(m map[string]any) error {
		if m["step"] != name {
			return nil
		}
		raw, err := json.Marshal(m["data"])
		if err != nil {
			return err
		}
		var old Old
		if m["data"] != nil {
			if err := json.Unmarshal(raw, &old); err != nil {
				return fmt.Errorf("conversation: the stored data of step %s does not decode into %T: %w", name, old, err)
			}
		}
		nu, err := fn(old)
		if err != nil {
			return err
		}
		enc, err := json.Marshal(nu)
		if err != nil {
			return err
		}
		dec := json.NewDecoder(bytes.NewReader(enc))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return err
		}
		m["data"] = v
		return nil
	}
	return migrate.Raw(from, func(doc map[string]any) error {
		st, _ := doc[field].(map[string]any)
		frames, _ := st["frames"].([]any)
		for _, fr := range frames {
			m, ok := fr.(map[string]any)
			if !ok {
				continue
			}
			if err := conv(m); err != nil {
				return err
			}
			hist, _ := m["history"].([]any)
			for _, p := range hist {
				if pm, ok := p.(map[string]any); ok {
					if err := conv(pm); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
}
