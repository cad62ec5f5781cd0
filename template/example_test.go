package template_test

import (
	"fmt"
	"net/http"

	"github.com/fanouthq/fanout/template"
)

// The seeds' scenario: the auth step's body from the inbound request, then
// the data step's Authorization header from the auth step's answer.
func Example() {
	request := template.RequestValue(template.Request{
		Method: http.MethodPost,
		Path:   "/users/42/signup",
		Body:   []byte(`{"username":"ada","email":"ada@example.com"}`),
		PathParams: map[string]string{
			"id": "42",
		},
	})

	body := template.MustParse("body", `{"username": {{ json .request.body.username }}}`, template.Options{})
	out, err := body.Execute(template.Data(request, map[string]any{}))
	fmt.Println(string(out), err)

	auth := template.ResponseValue(200, nil, []byte(`{"token":"t-123"}`))
	steps := map[string]any{"auth": auth}
	header := template.MustParse("headers.Authorization", `Bearer {{ .steps.auth.body.token }}`, template.Options{})
	out, err = header.Execute(template.Data(request, steps))
	fmt.Println(string(out), err)

	path := template.MustParse("path", `/users/{{ .request.path_params.id }}/notes?by={{ .request.body.email }}`, template.Options{Kind: template.URL})
	out, err = path.Execute(template.Data(request, steps))
	fmt.Println(string(out), err)

	_, err = header.Execute(template.Data(request, map[string]any{"auth": template.ResponseValue(200, nil, []byte(`{}`))}))
	fmt.Println(err)
	// Output:
	// {"username": "ada"} <nil>
	// Bearer t-123 <nil>
	// /users/42/notes?by=ada%40example.com <nil>
	// template headers.Authorization: {{.steps.auth.body.token}}: map has no entry for key "token"
}
