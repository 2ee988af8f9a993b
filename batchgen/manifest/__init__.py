"""Reading a content team's manifest: CSV/TSV, .xlsx, .ods and YAML into rows, with the row
expansions (templates, matrices, takes) and image handling validation relies on.

Entry point: :func:`load_manifest`, giving a :class:`Manifest` of :class:`ManifestRow`.
"""

from batchgen.manifest.delimited import DELIMITED_SUFFIXES as DELIMITED_SUFFIXES
from batchgen.manifest.loader import Manifest as Manifest
from batchgen.manifest.loader import load_manifest as load_manifest
from batchgen.manifest.ods import ODS_SUFFIXES as ODS_SUFFIXES
from batchgen.manifest.table import ManifestRow as ManifestRow
from batchgen.manifest.table import display_name as display_name
from batchgen.manifest.workbook import WORKBOOK_SUFFIXES as WORKBOOK_SUFFIXES
