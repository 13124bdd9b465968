"""Server-rendered pages (Jinja2): one layout, one small stylesheet, and the headers every
page carries. Pages work without JavaScript; the front door and, later, the approval pages
render through `Pages`."""
