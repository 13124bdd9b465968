"""One module per grant type. Each turns a token request into the principal a token will act
as (and its actor); deciding what the token may do is the token endpoint's job."""
