"""Text: what a name may be (the ledger's rule), how every user-chosen string
is written into HTML, CSV and PDF as data, and how money and dates read (Belgian
formats, the last valid day).
"""
