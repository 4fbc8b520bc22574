"""The vacancy feed edge: fetch, detect, parse, normalise and de-duplicate (no database).

`fetch.fetch` gets a feed through netguard's guarded session; `detect.parse_document` turns
bytes into a `ParseResult` of `RawItem`s (RSS/Atom, job XML, JSON-LD pages, JSON, CSV);
`incremental.parse_changed` re-parses only new or edited RSS/Atom items; `normalise` turns
items into `Vacancy`s; `dedupe.match` decides new / update / unchanged / duplicate against the
stored records' keys.
"""
