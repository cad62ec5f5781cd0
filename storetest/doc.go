// Package storetest is the contract of fanout.Store, as tests that every
// engine runs. An engine's test calls Run once with a function that returns
// a fresh, empty store on a real database:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) fanout.Store {
//			s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "fanout.db"), sqlite.Options{})
//			require.NoError(t, err)
//			t.Cleanup(func() { _ = s.Close() })
//			return s
//		})
//	}
//
// The tests only use the Store interface, never SQL or an engine's types,
// so the same suite pins SQLite and PostgreSQL to one behaviour. They
// control the clock through the Now fields of the params and never sleep.
// What a test cannot observe through the interface (durability across a
// restart, the exact locking) is tested in the engine's own package.
package storetest
