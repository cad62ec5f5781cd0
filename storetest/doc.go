// Package storetest is the contract of fanout.Store, as tests that every
// engine runs. An engine's test calls Run once with a function that makes
// a fresh, empty real database and returns how to open a store on it (a
// test may close its store and open another, to play a restart):
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) func() fanout.Store {
//			path := filepath.Join(t.TempDir(), "fanout.db")
//			return func() fanout.Store {
//				s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
//				require.NoError(t, err)
//				t.Cleanup(func() { _ = s.Close() })
//				return s
//			}
//		})
//	}
//
// The tests only use the Store interface, never SQL or an engine's types,
// so the same suite pins SQLite and PostgreSQL to one behaviour. They
// control the clock through the Now fields of the params and never sleep.
// What a test cannot observe through the interface (durability across a
// restart, the exact locking) is tested in the engine's own package.
package storetest
