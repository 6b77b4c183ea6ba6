"""`infogan explore`: a local web page that turns a trained model's codes and shows the images.

`labels` (names of codes and their values, read from evaluation.json) needs nothing beyond the
package; the server (`app`, `server`) needs the `explore` extra: pip install 'infogan[explore]'.
"""
