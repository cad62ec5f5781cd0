package auth_test

import (
	"fmt"
	"net/http"

	"github.com/fanouthq/fanout/auth"
	"github.com/fanouthq/fanout/config"
)

// The config stores the SHA-256 of each key; a request presents the key.
func ExampleKeys() {
	keys, err := auth.NewKeys(map[string]*config.Tenant{
		"acme": {Keys: []config.APIKey{{Name: "ci", SHA256: auth.HashKey("fo_example")}}},
	})
	if err != nil {
		panic(err)
	}
	cred, err := auth.APIKeyCredential(http.Header{"Authorization": {"Bearer fo_example"}})
	if err != nil {
		panic(err)
	}
	id, ok := keys.Lookup(cred.Value)
	fmt.Println(ok, id.Tenant, id.Key, id.Principal(), cred.Header)
	// Output: true acme ci key:acme/ci Authorization
}

func ExampleHashKey() {
	fmt.Println(auth.HashKey("abc"))
	// Output: ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
}
