"""Commands: parse options, call the layers below, render. Nothing else lives here."""
