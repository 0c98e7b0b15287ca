package memstore_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/typedsession/session/store/memstore"
)

// TestAttackBackupPathFolderMissing: Options.BackupPath's folder "must
// exist", but New accepted a path in a folder that does not exist (a
// typo, a volume not mounted): every snapshot then failed, reported only
// through OnError, and Close failed at shutdown, so the sessions a user
// took for persisted were lost at the restart. New refuses it, naming the
// option and the folder; a folder that is a file too.
func TestAttackBackupPathFolderMissing(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		filepath.Join(dir, "missing", "sessions.snap"),
		filepath.Join(file, "sessions.snap"),
	} {
		st, err := memstore.New(memstore.Options{BackupPath: path})
		if err == nil {
			st.Close()
			t.Errorf("New with BackupPath %s: no error", path)
			continue
		}
		if !strings.Contains(err.Error(), "BackupPath") || !strings.Contains(err.Error(), filepath.Dir(path)) {
			t.Errorf("New with BackupPath %s: err = %v, want one naming Options.BackupPath and its folder", path, err)
		}
	}
	// A folder that exists, with no snapshot yet, is fine.
	st, err := memstore.New(memstore.Options{BackupPath: filepath.Join(dir, "sessions.snap")})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}
