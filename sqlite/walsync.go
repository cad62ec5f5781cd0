package sqlite

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
)

// walSyncer makes durable commits durable outside the write gate.
//
// The writer connection commits every transaction with synchronous=NORMAL:
// in WAL mode the commit appends its frames to the WAL (the OS's page
// cache) and returns without an fsync. A durable write (an Accept, an admin
// write) then calls sync, which fdatasyncs the WAL file before the write
// returns: the same guarantee as synchronous=FULL, whose commit fsyncs the
// WAL before it returns, but the fsync no longer holds the gate, so the
// next transaction (the next Accept batch, a Lease, a Complete) runs while
// the disk flushes, and one fdatasync serves every commit written before it
// started (group sync).
//
// Why that is as durable: a commit's frames are in the WAL file until a
// checkpoint has copied them into the database file; every checkpoint
// (PASSIVE from the checkpointer's synchronous=FULL connection, or the
// writer's automatic backstop) syncs the WAL before copying and the
// database file before it marks the frames copied, and only then may the
// WAL be restarted and its frames overwritten. So when sync's fdatasync
// returns, each frame written before it started is on disk, in the WAL or
// in the database file. Recovery keeps the longest valid prefix of the WAL,
// so a relaxed commit written before a durable one is kept with it or lost
// with it, never the durable one without it. fdatasync rather than fsync:
// the WAL's data and its size are flushed, its modification time is not.
type walSyncer struct {
	path string
	f    *os.File // the -wal file (see openWALSyncer); guarded by mu

	committed atomic.Uint64 // durable commits written so far

	mu     sync.Mutex // one fdatasync at a time
	synced uint64     // every durable commit up to this one is on disk
}

// openWALSyncer opens the WAL file of the database at path. It stays open
// until close: POSIX drops a process's locks on a file when any of its
// descriptors of that file is closed, so it is never opened and closed per
// sync.
func openWALSyncer(path string) (*walSyncer, error) {
	f, err := os.OpenFile(path+"-wal", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open WAL file for sync: %w", err)
	}
	return &walSyncer{path: path + "-wal", f: f}, nil
}

// commit records a durable commit just written and returns its number for
// sync. It is called with the write gate held, after the commit, so that a
// sync that reads the counter afterwards covers the commit's frames.
func (w *walSyncer) commit() uint64 { return w.committed.Add(1) }

// sync returns once durable commit seq is on disk.
func (w *walSyncer) sync(seq uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.synced >= seq {
		return nil // an fdatasync that started after seq's commit covered it
	}
	upto := w.committed.Load() // all written: their commits returned before this load
	if err := w.current(); err != nil {
		return err
	}
	if err := fdatasync(w.f); err != nil {
		return fmt.Errorf("sync WAL: %w", err)
	}
	w.synced = upto
	return nil
}

// current reopens the WAL file if SQLite replaced it, which it does only
// after every connection closed: the last one checkpoints the whole WAL
// into the database file, syncs it and deletes the WAL. So the commits
// written to a replaced WAL are on disk already, and the ones written
// after it must be synced through the new file. mu must be held.
func (w *walSyncer) current() error {
	cur, err := os.Stat(w.path)
	if err != nil {
		return fmt.Errorf("sync WAL: %w", err)
	}
	if held, err := w.f.Stat(); err == nil && os.SameFile(cur, held) {
		return nil
	}
	f, err := os.OpenFile(w.path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("sync WAL: reopen: %w", err)
	}
	old := w.f
	w.f = f
	_ = old.Close() // a deleted file SQLite holds no locks on any more
	return nil
}

func (w *walSyncer) close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.f.Close()
}
